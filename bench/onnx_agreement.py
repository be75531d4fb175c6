#!/usr/bin/env python3
"""How closely the ONNX copies of a trained model agree with its TensorFlow Predictor, for both ways of
making the int8 copy; prints the figures issue 25 asks for.

    python bench/onnx_agreement.py --model-dir runs/msra-main/model [--hyperparameters configs/msra-cpu.json]

For each quantization (``dynamic``, then ``static`` calibrated on 512 training sentences) the model's
``onnx/`` is written afresh with :func:`albert_ner.runtimes.onnx_export.export_onnx` (checked on the job's own
validation split, re-drawn from the training channel with the job's seed and share), then measured:

- on the validation split (what chooses between the two quantizations): int8 entity F1 and ECE against
  float32's, and sentences/s at batch size 64 of every runtime;
- on the MSRA test set (reported, not used to choose anything): float32 ONNX against the TensorFlow
  Predictor (sentences with identical tags and entities out of 5,000, the largest score difference), int8's
  F1 loss and ECE change.

The quantization with the better validation F1 (then speed) is written last, so the model directory is
left with it. Thread counts: ONNX Runtime's default (one per core), TensorFlow's default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.calibration import entity_outcomes, reliability  # noqa: E402
from albert_ner.data import read_channel  # noqa: E402
from albert_ner.evaluation import evaluate  # noqa: E402
from albert_ner.prediction import Predictor  # noqa: E402
from albert_ner.runtimes.onnx_export import export_onnx  # noqa: E402
from albert_ner.training import _split  # noqa: E402  (the job's own validation split)
from bench_inference import cpu_description  # noqa: E402

MSRA = REPO / "data" / "msra"


def measure(model_dir: Path, sentences: list) -> dict:
    tokens = [list(sentence.tokens) for sentence in sentences]
    figures: dict = {}
    for runtime in ("tensorflow", "onnx", "onnx-int8"):
        predictor = Predictor.load(model_dir, batch_size=64, runtime=runtime)
        predictor.predict(tokens[:256])  # warm-up
        started = time.perf_counter()
        predicted = predictor.predict(tokens)
        seconds = time.perf_counter() - started
        figures[runtime] = {
            "sentences_per_second": len(tokens) / seconds,
            "f1": evaluate(sentences, [p.entities for p in predicted]).f1,
            "ece": reliability(entity_outcomes(sentences, predicted)).ece,
            "predicted": predicted,
        }
    expected = figures["tensorflow"]["predicted"]
    for runtime in ("onnx", "onnx-int8"):
        ours = figures[runtime]["predicted"]
        same = [a.tags == b.tags and a.entities == b.entities for a, b in zip(ours, expected, strict=True)]
        differences = [abs(x - y) for a, b, equal in zip(ours, expected, same, strict=True) if equal
                       for x, y in zip([*a.scores, a.sentence_score], [*b.scores, b.sentence_score], strict=True)]
        figures[runtime]["identical"] = sum(same)
        figures[runtime]["largest_score_difference"] = max(differences, default=0.0)
    return figures


def report(name: str, figures: dict, count: int) -> None:
    base = figures["tensorflow"]
    print(f"  {name} ({count:,} sentences): TensorFlow F1 {base['f1']:.4f}, ECE {base['ece']:.4f}, "
          f"{base['sentences_per_second']:.0f} sentences/s")
    for runtime in ("onnx", "onnx-int8"):
        ours = figures[runtime]
        print(f"    {runtime:9s}: identical tags and entities {ours['identical']:,}/{count:,}, largest score "
              f"difference {ours['largest_score_difference']:.2e}; "
              f"F1 {ours['f1']:.4f} ({ours['f1'] - base['f1']:+.4f}), "
              f"ECE {ours['ece']:.4f} ({ours['ece'] - base['ece']:+.4f}); {ours['sentences_per_second']:.0f} "
              f"sentences/s ({ours['sentences_per_second'] / base['sentences_per_second']:.2f}x TensorFlow)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--hyperparameters", type=Path, default=REPO / "configs" / "msra-cpu.json")
    args = parser.parse_args()
    hyperparameters = json.loads(args.hyperparameters.read_text(encoding="utf-8"))
    print(cpu_description())
    training = read_channel(MSRA / "train", repair=True)[0]
    training, validation = _split(training, float(hyperparameters.get("validation_split", 0.1)),
                                  int(hyperparameters.get("seed", 42)))
    test = read_channel(MSRA / "test", repair=True)[0]
    print(f"validation split {len(validation):,} sentences, training {len(training):,}, test {len(test):,}")
    reference = Predictor.load(args.model_dir, runtime="tensorflow")
    chosen = {}
    for quantization in ("dynamic", "static"):
        started = time.perf_counter()
        export_onnx(reference, args.model_dir, validation, training, quantization)
        print(f"{quantization} quantization: export {time.perf_counter() - started:.0f} s")
        on_validation = measure(args.model_dir, validation)
        report("validation", on_validation, len(validation))
        report("test", measure(args.model_dir, test), len(test))
        chosen[quantization] = (on_validation["onnx-int8"]["f1"], on_validation["onnx-int8"]["sentences_per_second"])
    best = max(chosen, key=lambda name: chosen[name])
    print(f"chosen on validation (F1, then speed): {best}")
    if best != "static":
        export_onnx(reference, args.model_dir, validation, training, best)
    agreement = json.loads((args.model_dir / "onnx" / "agreement.json").read_text(encoding="utf-8"))
    print("onnx/agreement.json:", json.dumps({name: {key: value for key, value in figures.items() if key != "seconds"}
                                               for name, figures in agreement["runtimes"].items()}))


if __name__ == "__main__":
    main()
