#!/usr/bin/env python3
"""Active learning on MSRA, measured: selecting by uncertainty against selecting at random.

    python bench/active_learning.py [--quick] [--initial 1000] [--step 1000] [--rounds 4] [--pool 6000]
                                    [--epochs 2] [--test-limit 1000] [--markdown PATH] [--plot PATH]

Both strategies start from the same ``--initial`` sentences drawn from the MSRA training set and add
``--step`` sentences per round for ``--rounds`` rounds, from the same candidate pool (``--pool`` sentences
drawn once from the rest of the training set; scoring all 49,000 every round would dominate the run on a
CPU). *random* draws them uniformly (seeded); *uncertainty* runs ``albert_ner.selection.select`` with the
model of the previous round (1 - P(best path), the measure ``albert-ner select`` uses). After every round
a model is trained from scratch on the labelled set with the same hyperparameters and seed (a fixed small
schedule, below) by the real training job (``albert_ner.training.train`` on an /opt/ml tree), which keeps
the epoch with the best F1 on a fixed validation set (500 training sentences outside the pool), and its
entity F1 on the MSRA test set is recorded.

The result: the table of test F1 per round (with the characters labelled, since uncertainty prefers
longer sentences), the plot (``--plot``), and how many labelled sentences uncertainty selection needed to
reach the random curve's final F1 (linear interpolation between rounds), i.e. the labelling it saves.
``--keep-models DIR`` keeps each round's model (for ``bench/calibration.py``). ``python data/fetch_msra.py``
fetches the corpus.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.readers.conll import read_conll  # noqa: E402
from albert_ner.sentences import Sentence  # noqa: E402

MSRA = REPO / "data" / "msra"
VALIDATION_SIZE = 500
# A fixed small schedule for a 2-core CPU: a 1-layer albert_tiny-wide encoder from scratch + BiLSTM 64 + CRF.
HYPERPARAMETERS = {
    "encoder_size": "tiny", "num_hidden_layers": "1", "lstm_units": "64", "max_seq_length": "128",
    "batch_size": "32", "learning_rate": "2e-3", "head_learning_rate": "5e-3", "token_dropout": "0.1",
    "early_stopping_patience": "0", "checkpoint_every_steps": "0", "log_every_steps": "100000",
}
QUICK = {"initial": 100, "step": 100, "rounds": 2, "pool": 400, "epochs": 1, "test_limit": 300}


def read_msra(name: str) -> list[Sentence]:
    path = MSRA / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python data/fetch_msra.py` first")
    return read_conll(path, repair=True)[0]


def write_jsonl(path: Path, sentences: Sequence[Sentence]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        for sentence in sentences:
            stream.write(json.dumps({"text": "".join(sentence.tokens),
                                     "entities": [list(entity) for entity in sentence.entities]},
                                    ensure_ascii=False) + "\n")


def train_round(work: Path, labelled: Sequence[Sentence], validation: Sequence[Sentence],
                test: Sequence[Sentence], epochs: int, seed: int) -> tuple[float, Path]:
    """Train from scratch on ``labelled``; returns the test F1 and the model directory."""
    from albert_ner.environment import TrainingEnvironment
    from albert_ner.hyperparameters import Hyperparameters
    from albert_ner.training import train

    write_jsonl(work / "input" / "data" / "training" / "train.jsonl", labelled)
    write_jsonl(work / "input" / "data" / "validation" / "validation.jsonl", validation)
    write_jsonl(work / "input" / "data" / "test" / "test.jsonl", test)
    hyperparameters = Hyperparameters.from_strings({**HYPERPARAMETERS, "epochs": str(epochs), "seed": str(seed)})
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(work)})
    result = train(hyperparameters, env)
    assert result.test is not None
    return result.test.f1, env.model_dir


def labelling_to_reach(target: float, sizes: Sequence[int], scores: Sequence[float]) -> float | None:
    """Labelled sentences at which a curve first reaches ``target`` (linear between rounds); None if never."""
    for index, (size, score) in enumerate(zip(sizes, scores, strict=True)):
        if score >= target:
            if index == 0:
                return float(size)
            previous_size, previous_score = sizes[index - 1], scores[index - 1]
            return previous_size + (size - previous_size) * (target - previous_score) / (score - previous_score)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a tiny setting to check the script: {QUICK}")
    parser.add_argument("--initial", type=int, default=1000)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of selection after the initial set")
    parser.add_argument("--pool", type=int, default=6000, help="candidate sentences both strategies draw from")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--test-limit", type=int, default=1000, help="first N MSRA test sentences")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "active_learning.png")
    parser.add_argument("--keep-models", type=Path, help="keep each round's model under this directory")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if min(args.initial, args.step, args.rounds, args.pool, args.epochs, args.test_limit) < 1:
        parser.error("every size must be at least 1")
    if args.step * args.rounds > args.pool:
        parser.error(f"--pool {args.pool} is smaller than --step x --rounds = {args.step * args.rounds}")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from albert_ner.prediction import Predictor
    from albert_ner.selection import select

    corpus = read_msra("train/msra_train.txt")
    test = read_msra("test/msra_test.txt")[:args.test_limit]
    order = list(range(len(corpus)))
    random.Random(args.seed).shuffle(order)
    validation = [corpus[i] for i in order[:VALIDATION_SIZE]]
    initial = [corpus[i] for i in order[VALIDATION_SIZE:VALIDATION_SIZE + args.initial]]
    pool_start = VALIDATION_SIZE + args.initial
    pool = [corpus[i] for i in order[pool_start:pool_start + args.pool]]
    by_text = {"".join(sentence.tokens): sentence for sentence in pool}

    curves: dict[str, list[tuple[int, int, float]]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as temporary:
        for strategy in ("random", "uncertainty"):
            labelled, remaining = list(initial), list(pool)
            chooser = random.Random(args.seed)
            curve = curves.setdefault(strategy, [])
            model_dir = Path()  # the previous round's model, set by each round
            for round_number in range(args.rounds + 1):
                if round_number:
                    if strategy == "random":
                        chosen = chooser.sample(remaining, args.step)
                    else:
                        predictor = Predictor.load(model_dir)
                        selection = select(predictor, ["".join(s.tokens) for s in remaining], args.step,
                                           labelled=("".join(s.tokens) for s in labelled))
                        chosen = [by_text[candidate.text] for candidate in selection.chosen]
                    taken = {id(sentence) for sentence in chosen}
                    remaining = [sentence for sentence in remaining if id(sentence) not in taken]
                    labelled += chosen
                work = Path(temporary) / f"{strategy}-{round_number}"
                f1, model_dir = train_round(work, labelled, validation, test, args.epochs, args.seed)
                if args.keep_models:
                    kept = args.keep_models / f"{strategy}-{len(labelled)}"
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(model_dir, kept) if not kept.exists() else None
                    model_dir = kept
                characters = sum(len(sentence.tokens) for sentence in labelled)
                curve.append((len(labelled), characters, f1))
                print(f"[{time.monotonic() - started:6.0f} s] {strategy:>11} round {round_number}: "
                      f"{len(labelled)} sentences ({characters} characters), test F1 {f1:.4f}", flush=True)

    lines = [f"MSRA, {args.initial} initial + {args.step} x {args.rounds} rounds from a pool of {args.pool}; "
             f"{args.epochs} epochs per round (best on {VALIDATION_SIZE} validation sentences), "
             f"test = first {len(test)} MSRA test sentences, seed {args.seed}; "
             f"{time.monotonic() - started:.0f} s in all", "",
             "| labelled sentences | random: characters | random: test F1 | uncertainty: characters | "
             "uncertainty: test F1 |", "|---:|---:|---:|---:|---:|"]
    for (size, random_chars, random_f1), (_, uncertain_chars, uncertain_f1) in zip(
            curves["random"], curves["uncertainty"], strict=True):
        lines.append(f"| {size:,} | {random_chars:,} | {random_f1:.4f} | {uncertain_chars:,} | {uncertain_f1:.4f} |")
    sizes = [size for size, _, _ in curves["uncertainty"]]
    target = curves["random"][-1][2]
    needed = labelling_to_reach(target, sizes, [f1 for _, _, f1 in curves["uncertainty"]])
    final = curves["random"][-1][0]
    if target <= curves["uncertainty"][0][2]:
        lines.append(f"\nthe initial model already reaches random's final F1 {target:.4f}: this run cannot "
                     "tell the strategies apart")
    elif needed is None:
        lines.append(f"\nuncertainty selection did not reach the random curve's final F1 {target:.4f} "
                     f"within {sizes[-1]:,} sentences")
    else:
        final_characters = curves["random"][-1][1]
        characters = labelling_to_reach(target, [chars for _, chars, _ in curves["uncertainty"]],
                                        [f1 for _, _, f1 in curves["uncertainty"]])
        assert characters is not None
        lines.append(f"\nrandom reaches F1 {target:.4f} with {final:,} labelled sentences; uncertainty selection "
                     f"with {needed:,.0f}: {final - needed:,.0f} sentences ({(final - needed) / final:.0%}) "
                     f"less labelling; in characters {characters:,.0f} against {final_characters:,} "
                     f"({(final_characters - characters) / final_characters:.0%} less)")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    plot(curves, args.plot, target)
    print(f"plot written to {args.plot}")
    return 0


def plot(curves: dict[str, list[tuple[int, int, float]]], path: Path, target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for strategy, curve in curves.items():
        axis.plot([size for size, _, _ in curve], [f1 for _, _, f1 in curve], marker="o", label=strategy)
    axis.axhline(target, color="grey", linestyle=":", linewidth=1, label="random's final F1")
    axis.set_xlabel("labelled training sentences")
    axis.set_ylabel("MSRA test entity F1")
    axis.set_title("Active learning: uncertainty (1 - P(best path)) vs random")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
