#!/usr/bin/env python3
"""Calibration of the entity scores on a labelled test set: reliability table, plot and ECE.

    python bench/calibration.py --model-dir MODEL [--data data/msra/test/msra_test.txt] [--bins 10]
                                [--plot bench/calibration.png] [--markdown PATH]

Every predicted entity's score (``Predictor.predict``) is set against whether it is exactly right (gold
span and type); ``albert_ner.calibration`` bins them and computes the expected calibration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.calibration import Reliability, entity_outcomes, reliability  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "msra" / "test" / "msra_test.txt")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "calibration.png")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()

    from albert_ner.data import read_channel
    from albert_ner.prediction import Predictor

    sentences = read_channel(args.data, repair=True)[0]
    predictor = Predictor.load(args.model_dir)
    predictions = predictor.predict([sentence.tokens for sentence in sentences])
    result = reliability(entity_outcomes(sentences, predictions), args.bins)
    heading = f"{args.data.name}: {len(sentences):,} sentences, model {args.model_dir}"
    print(heading)
    print(result.table())
    if args.markdown:
        args.markdown.write_text(heading + "\n\n" + result.table() + "\n", encoding="utf-8")
    plot(result, args.plot)
    print(f"plot written to {args.plot}")
    return 0


def plot(result: Reliability, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    filled = [b for b in result.bins if b.count]
    figure, (axis, counts) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, height_ratios=[3, 1])
    width = 1 / len(result.bins)
    axis.bar([b.lower for b in filled], [b.precision for b in filled], width=width, align="edge",
             edgecolor="black", alpha=0.7, label="precision in bin")
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    axis.plot([b.mean_score for b in filled], [b.precision for b in filled], marker="o", color="C1",
              label="at the bin's mean score")
    axis.set_ylabel("precision")
    axis.set_title(f"Entity score reliability (ECE {result.ece:.3f})")
    axis.legend(loc="upper left")
    counts.bar([b.lower for b in result.bins], [b.count for b in result.bins], width=width, align="edge",
               edgecolor="black", color="C2")
    counts.set_yscale("log")
    counts.set_xlabel("entity score")
    counts.set_ylabel("entities")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
