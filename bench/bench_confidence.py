#!/usr/bin/env python3
"""What entity scores cost: offline Predictor throughput with scores (``predict``) and without
(``predict_entities``), side by side in one run, on the MSRA test set.

    python bench/bench_confidence.py [--model-dir DIR] [--passes 3] [--limit N]

Default model: the random albert_tiny-sized tagger of ``tiny_model.py`` (speed does not depend on the
weights). The two variants alternate pass by pass (without, with, without, with, ...) on the same
length-sorted batches and threads, so load from other processes falls on both; the result is the ratio
of their median sentences/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "ner"))

from tiny_model import MSRA_TEST, msra_texts, random_tiny_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="a trained model directory (default: random albert_tiny)")
    parser.add_argument("--data", type=Path, default=MSRA_TEST)
    parser.add_argument("--passes", type=int, default=3, help="timed passes of each variant (median is kept)")
    parser.add_argument("--limit", type=int, help="only the first N sentences")
    args = parser.parse_args()
    if args.passes < 1:
        parser.error("--passes must be at least 1")

    from albert_ner.prediction import Predictor

    texts = msra_texts(args.data)[:args.limit]
    token_lists = [list(text) for text in texts]
    with tempfile.TemporaryDirectory() as temporary:
        predictor = (Predictor.load(args.model_dir) if args.model_dir
                     else random_tiny_model(Path(temporary) / "model", texts))
    variants = {"without scores": predictor.predict_entities, "with scores": predictor.predict}
    for run in variants.values():
        run(token_lists[:256])  # trace and warm up
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.passes):
        for name, run in variants.items():
            started = time.perf_counter()
            run(token_lists)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    print(f"{len(texts)} sentences, {args.passes} passes each, load average {os.getloadavg()[0]:.1f} at the end")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:>15}: median {medians[name]:7.1f} sentences/s  (passes: "
              + ", ".join(f"{value:.1f}" for value in values) + ")")
    print(f"ratio with/without: {medians['with scores'] / medians['without scores']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
