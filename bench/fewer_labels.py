"""Fewer labels on MSRA: 10% of the training sentences as gold, the other 90% as unlabelled text, and what
each way of learning from that text adds, beside gold alone and the full training set.

The split (seeded, ``--seed``): 4% of MSRA's training sentences are held out as the validation set every
variant uses (the main job's ``validation_split``); of the other 96%, ``--gold-share`` (10%) is the gold
training data and the rest the unlabelled text (one sentence per line; its labels are never read).

Variants, each with configs/msra-cpu.json's settings (``--config``) and the same validation set:

  a  gold only
  b  self-training on the unlabelled text (``self_training_rounds`` 3, stopping early on validation);
     threshold 0.9 or 0.97
  c  masked-language-model pretraining on gold plus unlabelled text; ``mlm_steps`` 3,000 or 6,000
  d  b's and c's chosen settings together
  e  Jiagu's labels of the unlabelled text as the `teacher` channel, written by bench/jiagu_teacher.py
     with ``--jiagu-python`` (a Python with Jiagu installed; see that script); ``teacher_weight`` 0.5 or 1
  f  the whole 96% as gold: the main job's data

Every choice is made on validation F1: each setting of a variant trains without the test set, the one of
highest validation F1 is kept, and only that model is scored on the MSRA test set (``albert-ner
evaluate``), once. Prints the CPU, each run's wall time and validation F1, the chosen runs' test F1, and
writes ``results.json`` and ``results.md`` in ``--work``. ``--quick`` is a smoke run (3,000 sentences,
one epoch, tiny steps, 1,000 test sentences); its figures mean nothing.

    python bench/fewer_labels.py --jiagu-python .venv-jiagu/bin/python [--variants abcdef] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "container" / "ner"), str(REPO / "bench"), str(REPO / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from active_learning import read_msra, write_jsonl  # noqa: E402
from albert_ner.sentences import Sentence  # noqa: E402
from bench_inference import cpu_description  # noqa: E402

TRAIN = REPO / "container" / "ner" / "train"
VALIDATION_SHARE = 0.04
#: Each variant's settings to choose from on validation F1 (d is built from b's and c's choices).
GRIDS: dict[str, list[dict[str, str]]] = {
    "a": [{}],
    "b": [{"self_training_rounds": "3", "self_training_threshold": threshold} for threshold in ("0.9", "0.97")],
    "c": [{"mlm_steps": steps} for steps in ("3000", "6000")],
    "e": [{"teacher_weight": weight} for weight in ("0.5", "1")],
    "f": [{}],
}
QUICK = {"sentences": 3000, "test": 1000, "overrides": {"epochs": "1", "log_every_steps": "50"},
         "mlm_steps": ("50", "100"), "rounds": "1"}


def split(sentences: Sequence[Sentence], gold_share: float, seed: int) -> tuple[list, list, list, list]:
    """(validation, gold, unlabelled, full): the held-out 4%, then the gold share of the rest, the rest of
    it, and all of it (variant f's training data)."""
    order = np.random.default_rng(seed).permutation(len(sentences))
    held_out = int(round(len(sentences) * VALIDATION_SHARE))
    validation, rest = order[:held_out], order[held_out:]
    gold_count = int(round(len(rest) * gold_share))
    pick = lambda indices: [sentences[i] for i in sorted(indices)]  # noqa: E731 - in corpus order
    return pick(validation), pick(rest[:gold_count]), pick(rest[gold_count:]), pick(rest)


def train_run(work: Path, name: str, config: dict[str, str], setting: dict[str, str],
              channels: dict[str, Path]) -> dict:
    """One `train` with ``config`` and the variant's ``setting`` on an /opt/ml tree of its own; its
    validation F1 and wall time."""
    hyperparameters = {**config, **setting}
    base = work / name
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    for channel, path in channels.items():  # a channel is a directory, here holding one file
        (base / "input" / "data" / channel).mkdir(parents=True)
        (base / "input" / "data" / channel / path.name).symlink_to(path.resolve())
    started = time.monotonic()
    with open(base / "train.log", "w", encoding="utf-8") as log:
        finished = subprocess.run([sys.executable, str(TRAIN)], env=dict(os.environ, SAGEMAKER_BASE_DIR=str(base)),
                                  stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        raise SystemExit(f"{name}: train failed; see {base / 'train.log'} and {base / 'output' / 'failure'}")
    report = json.loads((base / "model" / "validation_report.json").read_text(encoding="utf-8"))
    result = {"run": name, "setting": setting, "seconds": round(seconds),
              "validation_f1": report["entity_level_strict"]["micro_avg"]["f1"], "model": str(base / "model")}
    print(f"  {name}: validation F1 {result['validation_f1']:.4f}, {seconds:.0f} s "
          f"({json.dumps(setting, sort_keys=True)})", flush=True)
    return result


def test_f1(model: Path, test: Path) -> float:
    """The chosen model scored on the test set, once."""
    output = model.parent / "test_report.json"
    subprocess.run([sys.executable, "-m", "albert_ner", "evaluate", "--model-dir", str(model), "--runtime",
                    "tensorflow", "--output", str(output), str(test)], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=str(REPO / "container" / "ner")))
    return json.loads(output.read_text(encoding="utf-8"))["entity_level_strict"]["micro_avg"]["f1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="abcdef", help="which of a-f to run (default: all)")
    parser.add_argument("--jiagu-python", type=Path, default=REPO / ".venv-jiagu" / "bin" / "python",
                        help="a Python with Jiagu, to label the unlabelled text for variant e (default: .venv-jiagu)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "msra-cpu.json")
    parser.add_argument("--gold-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / time.strftime("fewer-labels-%Y%m%d-%H%M%S"))
    parser.add_argument("--quick", action="store_true", help="a smoke run; its figures mean nothing")
    args = parser.parse_args()
    if "e" in args.variants and not args.jiagu_python.is_file():
        raise SystemExit(f"variant e needs Jiagu: {args.jiagu_python} is not a Python (see bench/jiagu_teacher.py)")
    print(f"{cpu_description()}; {os.cpu_count()} cores", flush=True)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    config.pop("validation_split", None)  # the validation channel is given
    corpus = read_msra("train/msra_train.txt")
    test = read_msra("test/msra_test.txt")
    grids = dict(GRIDS)
    if args.quick:
        corpus, test = corpus[:QUICK["sentences"]], test[:QUICK["test"]]
        config.update(QUICK["overrides"])
        grids["b"] = [{**setting, "self_training_rounds": QUICK["rounds"]} for setting in grids["b"]]
        grids["c"] = [{"mlm_steps": steps} for steps in QUICK["mlm_steps"]]
    validation, gold, unlabelled, full = split(corpus, args.gold_share, args.seed)
    data = args.work / "data"
    write_jsonl(data / "validation.jsonl", validation)
    write_jsonl(data / "gold.jsonl", gold)
    write_jsonl(data / "full.jsonl", full)
    write_jsonl(data / "test.jsonl", test)
    (data / "unlabelled.txt").write_text("".join("".join(s.tokens) + "\n" for s in unlabelled), encoding="utf-8")
    if "e" in args.variants:
        subprocess.run([str(args.jiagu_python), str(REPO / "bench" / "jiagu_teacher.py"), "--input",
                        str(data / "unlabelled.txt"), "--output", str(data / "teacher.jsonl")], check=True)
    print(f"split (seed {args.seed}): {len(validation):,} validation, {len(gold):,} gold ({args.gold_share:g} of the "
          f"{len(full):,} not held out), {len(unlabelled):,} unlabelled; test {len(test):,}", flush=True)

    channels = {"validation": data / "validation.jsonl", "training": data / "gold.jsonl"}
    with_text = {**channels, "unlabelled": data / "unlabelled.txt"}
    inputs = {"a": channels, "b": with_text, "c": with_text, "d": with_text,
              "e": {**channels, "teacher": data / "teacher.jsonl"}, "f": {**channels, "training": data / "full.jsonl"}}
    chosen: dict[str, dict] = {}
    results: dict[str, dict] = {"cpu": {"description": cpu_description(), "cores": os.cpu_count()}, "variants": {}}
    for variant in "abcdef":
        if variant not in args.variants:
            continue
        if variant == "d":
            if not {"b", "c"} <= chosen.keys():
                raise SystemExit("variant d combines b's and c's choices: run b and c with it")
            grid = [{**chosen["b"]["setting"], **chosen["c"]["setting"]}]
        else:
            grid = grids[variant]
        print(f"variant {variant}:", flush=True)
        runs = [train_run(args.work, f"{variant}{number}", config, setting, inputs[variant])
                for number, setting in enumerate(grid, start=1)]
        best = max(runs, key=lambda run: run["validation_f1"])
        best["test_f1"] = test_f1(Path(best["model"]), data / "test.jsonl")
        chosen[variant] = best
        results["variants"][variant] = {"runs": runs, "chosen": best["run"], "test_f1": best["test_f1"],
                                        "seconds": sum(run["seconds"] for run in runs)}
        print(f"  chosen {best['run']} on validation; test F1 {best['test_f1']:.4f}", flush=True)
        (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = ["| variant | chosen on validation | validation F1 | test F1 | wall time of the chosen run |",
             "|---|---|---|---|---|"]
    for variant, best in chosen.items():
        setting = best["setting"]
        lines.append(f"| {variant} | {json.dumps(setting, sort_keys=True) if setting else '-'} | "
                     f"{best['validation_f1']:.4f} | {best['test_f1']:.4f} | {best['seconds']:,} s |")
    table = "\n".join(lines) + "\n"
    (args.work / "results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
