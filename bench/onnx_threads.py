#!/usr/bin/env python3
"""ONNX Runtime's thread settings and `serve`'s worker count, measured rather than guessed.

    python bench/onnx_threads.py [--model-dir DIR] [--sentences 2000] [--passes 3] [--seconds 10]

Offline, on the MSRA test sentences: the Predictor with scores (what `serve` computes) on the int8 and
float32 copies, at batch sizes 1 (a quarter of the sentences) and 64, for every combination of intra-op
threads (1 .. the cores this process may use) and spinning (idle pool threads busy-waiting for work, ONNX
Runtime's own default, or not). Passes alternate between settings; the median of ``--passes`` is printed
with its range.

Served, the real `serve` process on loopback with ``ALBERT_NER_RUNTIME=onnx-int8`` and 1 worker or one
worker per core (`serve` gives each worker the cores divided by the workers as intra-op threads): p50 and
p99 latency and requests/s with 1 and 8 clients sending one sentence per request, for ``--seconds`` each.

Without ``--model-dir`` the random albert_tiny-sized model with jieba's dictionary is built and exported
first (speed does not depend on the weights).
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
from albert_ner.runtimes.choice import ONNX_FILES  # noqa: E402
from albert_ner.runtimes.onnx_export import export_onnx  # noqa: E402
from albert_ner.runtimes.onnx_runtime import session_options  # noqa: E402
from bench_inference import bench_endpoint, cpu_description  # noqa: E402
from tiny_model import msra_texts, random_tiny_model  # noqa: E402

Setting = tuple[str, int, int, bool]  # runtime, batch size, intra-op threads, spinning


def predictor_with(model_dir: Path, setting: Setting) -> Predictor:
    """The Predictor on ``setting``'s runtime, its session rebuilt with ``setting``'s threads and spinning."""
    runtime, batch_size, threads, spinning = setting
    predictor = Predictor.load(model_dir, batch_size=batch_size, runtime=runtime, threads=threads)
    predictor.core.session = onnxruntime.InferenceSession(  # type: ignore[attr-defined]
        str(model_dir / ONNX_FILES[runtime]), session_options(threads, spinning), providers=["CPUExecutionProvider"])
    return predictor


def offline(model_dir: Path, texts: list[str], passes: int, cores: int) -> None:
    settings: list[Setting] = [(runtime, batch, threads, spinning) for runtime in ("onnx-int8", "onnx")
                               for batch in (1, 64) for threads in range(1, cores + 1) for spinning in (False, True)]
    predictors = {setting: predictor_with(model_dir, setting) for setting in settings}
    tokens = {batch: [list(text) for text in (texts[:max(1, len(texts) // 4)] if batch == 1 else texts)]
              for batch in (1, 64)}
    rates: dict[Setting, list[float]] = {setting: [] for setting in settings}
    for predictor in predictors.values():
        predictor.predict(tokens[64][:64])  # warm-up
    for _ in range(passes):
        for setting, predictor in predictors.items():
            started = time.perf_counter()
            predictor.predict(tokens[setting[1]])
            rates[setting].append(len(tokens[setting[1]]) / (time.perf_counter() - started))
    print(f"\n{len(tokens[64]):,} sentences at batch 64, {len(tokens[1]):,} at batch 1; median of {passes} passes")
    print("| runtime | batch | intra-op threads | spinning | sentences/s (min-max) |")
    print("|---|---:|---:|---|---:|")
    for setting in settings:
        values = rates[setting]
        print(f"| {setting[0]} | {setting[1]} | {setting[2]} | {'on' if setting[3] else 'off'} | "
              f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f}) |", flush=True)


def served(model_dir: Path, texts: list[str], seconds: float, cores: int) -> None:
    rows = []
    for workers in sorted({1, cores}):
        result = bench_endpoint(model_dir.parent, "onnx-int8", texts, seconds, cores, workers)
        rows.extend((workers, cores // workers, *load) for load in result.loads)
    print("\n| workers | intra-op threads each | clients | p50 ms | p99 ms | requests/s | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for workers, threads, clients, p50, p99, requests, errors in rows:
        print(f"| {workers} | {threads} | {clients} | {p50:.1f} | {p99:.1f} | {requests:,.0f} | {errors} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="a model directory named `model` with onnx/ in it")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(cpu_description())
    texts = msra_texts()[:args.sentences]
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = Path(tempfile.mkdtemp(prefix="onnx-threads-")) / "model"
        random_tiny_model(model_dir, msra_texts(), lexicon=choose_lexicon("general", None))
        export_onnx(Predictor.load(model_dir, runtime="tensorflow"), model_dir)
    cores = len(os.sched_getaffinity(0))
    offline(model_dir, texts, args.passes, cores)
    served(model_dir, texts, args.seconds, cores)


if __name__ == "__main__":
    main()
