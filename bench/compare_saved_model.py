#!/usr/bin/env python3
"""Does the exported SavedModel give exactly what the Python Predictor gives? Prints the agreement.

    python bench/compare_saved_model.py                      # random albert_tiny-sized model, MSRA test set
    python bench/compare_saved_model.py --model-dir DIR      # a trained model (exported first if needed)

The SavedModel runs in a separate python that never imports albert_ner (plain ``tf.saved_model.load``).
A sentence agrees when every character's tag and every entity (type, start, end) are identical, and every
entity score and the sentence score are within 1e-5 of the Predictor's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "ner"))

from tiny_model import MSRA_TEST, msra_texts, random_tiny_model  # noqa: E402

SCORE_TOLERANCE = 1e-5

# Reads texts (a JSON list) from argv[2], writes one JSON line per text to argv[3].
SAVED_MODEL_RUNNER = r"""
import json, sys, time
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.load(open(sys.argv[2], encoding="utf-8"))
order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
results = [None] * len(texts)
started = time.perf_counter()
for first in range(0, len(order), 64):
    batch = order[first:first + 64]
    out = {key: value.numpy() for key, value in signature(text=tf.constant([texts[i].encode() for i in batch])).items()}
    for row, index in enumerate(batch):
        count = out["entity_counts"][row]
        results[index] = {
            "tags": [tag.decode() for tag in out["tags"][row, :out["lengths"][row]]],
            "entities": [[int(start), int(end), kind.decode()] for start, end, kind in zip(
                out["entity_starts"][row, :count], out["entity_ends"][row, :count], out["entity_types"][row, :count])],
            "scores": out["entity_scores"][row, :count].tolist(),
            "sentence_score": float(out["sentence_scores"][row]),
        }
elapsed = time.perf_counter() - started
assert "albert_ner" not in sys.modules
with open(sys.argv[3], "w", encoding="utf-8") as stream:
    for result in results:
        stream.write(json.dumps(result, ensure_ascii=False) + "\n")
print(f"saved_model_seconds={elapsed:.2f}")
"""


def run_saved_model(saved_model: Path, texts: list[str], work: Path) -> list[dict]:
    (work / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    completed = subprocess.run([sys.executable, "-c", SAVED_MODEL_RUNNER, str(saved_model), str(work / "texts.json"),
                                str(work / "saved_model.jsonl")], capture_output=True, text=True)
    if completed.returncode:
        raise SystemExit(completed.stderr[-3000:])
    print(completed.stdout.strip())
    return [json.loads(line) for line in (work / "saved_model.jsonl").read_text(encoding="utf-8").splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="a trained model directory (default: random albert_tiny)")
    parser.add_argument("--data", type=Path, default=MSRA_TEST, help="CoNLL file whose sentences are tagged")
    args = parser.parse_args()

    from albert_ner.export import export_saved_model
    from albert_ner.prediction import Predictor

    texts = msra_texts(args.data)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        if args.model_dir is None:
            model_dir = work / "model"
            predictor = random_tiny_model(model_dir, texts)
        else:
            model_dir = args.model_dir
            predictor = Predictor.load(model_dir)
        saved_model = model_dir / "1"
        if not (saved_model / "saved_model.pb").exists():
            export_saved_model(predictor, model_dir)
        started = time.perf_counter()
        predictions = predictor.predict([list(text) for text in texts])
        print(f"predictor_seconds={time.perf_counter() - started:.2f}")
        exported = run_saved_model(saved_model, texts, work)

    from albert_ner.tag_schemes import tags_to_entities

    same_tags = same_entities = same_scores = same = entities = 0
    largest_difference = 0.0
    first_differences = []
    for index, (text, prediction, result) in enumerate(zip(texts, predictions, exported, strict=True)):
        python_tags = prediction.tags
        python_entities = [list(entity) for entity in tags_to_entities(python_tags, predictor.label_map.scheme,
                                                                      repair=True)[0]]
        entities += len(python_entities)
        tags_equal, entities_equal = python_tags == result["tags"], python_entities == result["entities"]
        differences = [abs(result["sentence_score"] - prediction.sentence_score)]
        if entities_equal:
            differences += [abs(a - b) for a, b in zip(result["scores"], prediction.scores, strict=True)]
        largest_difference = max([largest_difference, *differences])
        scores_equal = entities_equal and max(differences) <= SCORE_TOLERANCE
        same_tags += tags_equal
        same_entities += entities_equal
        same_scores += scores_equal
        same += tags_equal and entities_equal and scores_equal
        if not (tags_equal and entities_equal) and len(first_differences) < 5:
            first_differences.append(f"  sentence {index} ({len(text)} chars): {python_entities} "
                                     f"vs {result['entities']}")
    total = len(texts)
    print(f"{args.data.name}: {total} sentences, {sum(map(len, texts))} characters, {entities} predicted entities, "
          f"longest {max(map(len, texts))} characters")
    print(f"identical tags: {same_tags}/{total}; identical entities: {same_entities}/{total}; "
          f"scores within {SCORE_TOLERANCE:g}: {same_scores}/{total} (largest difference {largest_difference:.2e})")
    print(f"agreement: {same / total:.2%} of sentences identical")
    print("\n".join(first_differences))
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
