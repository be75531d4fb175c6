#!/usr/bin/env python3
"""ONNX Runtime's thread settings for `serve`: intra-op threads and spinning, measured rather than guessed.

    python bench/onnx_threads.py [--model-dir DIR] [--sentences 2000]

On the MSRA test sentences, the Predictor with scores (what `serve` computes) on the int8 and float32
copies, at batch sizes 1 and 64, for every combination of intra-op threads (1 .. cores) and spinning
(idle threads busy-waiting for work, ONNX Runtime's default, or not). Passes alternate between settings;
the median of 3 is printed. Without ``--model-dir`` the random albert_tiny-sized model with jieba's
dictionary is built and exported first.
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

import onnxruntime  # noqa: E402

from albert_ner.lexicon import choose_lexicon  # noqa: E402
from albert_ner.prediction import Predictor  # noqa: E402
from albert_ner.runtimes.onnx_export import export_onnx  # noqa: E402
from albert_ner.runtimes.onnx_runtime import session_options  # noqa: E402
from bench_inference import cpu_description  # noqa: E402
from tiny_model import msra_texts, random_tiny_model  # noqa: E402


def predictor_with(model_dir: Path, runtime: str, threads: int, spinning: bool, batch_size: int) -> Predictor:
    predictor = Predictor.load(model_dir, batch_size=batch_size, runtime=runtime, threads=threads)
    options = session_options(threads, spinning)
    predictor.core.session = onnxruntime.InferenceSession(  # type: ignore[attr-defined]
        predictor.core.session._model_path, options, providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print(cpu_description())
    texts = msra_texts()[:args.sentences]
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = Path(tempfile.mkdtemp(prefix="onnx-threads-")) / "model"
        random_tiny_model(model_dir, msra_texts(), lexicon=choose_lexicon("general", None))
        export_onnx(Predictor.load(model_dir, runtime="tensorflow"), model_dir)
    cores = len(os.sched_getaffinity(0))
    settings = [(runtime, batch, threads, spinning) for runtime in ("onnx-int8", "onnx") for batch in (1, 64)
                for threads in range(1, cores + 1) for spinning in (False, True)]
    predictors = {setting: predictor_with(model_dir, setting[0], setting[2], setting[3], setting[1])
                  for setting in settings}
    tokens = {batch: [list(text) for text in (texts[:max(1, len(texts) // 4)] if batch == 1 else texts)]
              for batch in (1, 64)}
    rates: dict[tuple, list[float]] = {setting: [] for setting in settings}
    for predictor in predictors.values():
        predictor.predict(tokens[64][:64])  # warm-up
    for _ in range(args.passes):
        for setting, predictor in predictors.items():
            started = time.perf_counter()
            predictor.predict(tokens[setting[1]])
            rates[setting].append(len(tokens[setting[1]]) / (time.perf_counter() - started))
    print(f"{len(tokens[64]):,} sentences at batch 64, {len(tokens[1]):,} at batch 1; median of {args.passes} passes")
    print("| runtime | batch | intra-op threads | spinning | sentences/s (min-max) |")
    print("|---|---:|---:|---|---:|")
    for setting in settings:
        values = rates[setting]
        print(f"| {setting[0]} | {setting[1]} | {setting[2]} | {'on' if setting[3] else 'off'} | "
              f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) |")


if __name__ == "__main__":
    main()
