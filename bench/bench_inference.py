#!/usr/bin/env python3
"""Inference speed on this machine's CPU, every runtime side by side: offline throughput and `serve`'s latency.

    python bench/bench_inference.py [--quick] [--threads N] [--passes 3] [--seconds 15] [--markdown PATH]

Measured in one run, on the MSRA test set (5,000 sentences; `python data/fetch_msra.py` fetches it):

- offline sentences/s at batch sizes 1, 8 and 64 (the Predictor's ``batch_size``; for the others the
  batch of sentences): our Python Predictor on TensorFlow, our SavedModel (text in: tokenization,
  windowing, dictionary matching and Viterbi in the graph), the Predictor on ONNX Runtime float32
  (``runtime="onnx"``) and int8 (``"onnx-int8"``), the ONNX files written by ``export_onnx``, each
  without a lexicon and with jieba's 349k-word dictionary (the default job's); a Hugging Face
  ``AlbertForTokenClassification`` of the same size (argmax head, no dictionary) on PyTorch float32, and
  on ONNX Runtime through Optimum (skipped when ``optimum.onnxruntime`` is not importable), and Jiagu's
  perceptron tagger (one sentence at a time; skipped without ``pip install jiagu``). Batch size 1 runs on
  the first 1,000 sentences, the others on all; every figure is the median of 3 passes with their range
  (min-max), and the passes alternate between contenders (pass 1 of each, then pass 2 of each...), so a
  slow spell of the machine hits all of them. Each contender has a warm-up call first;
- the ratios the runtime issue aims at: ONNX int8 / HF PyTorch float32 (goal >= 3x) and ONNX int8 / the
  TensorFlow Predictor (goal >= 2x), at each batch size;
- ``POST /invocations`` of the real `serve` process on loopback, once per runtime (``ALBERT_NER_RUNTIME``
  tensorflow, onnx, onnx-int8; one worker; the model with the dictionary; one ``{"text": ...}`` per
  request): p50 and p99 latency and requests/s with 1 and with 8 concurrent clients, and the serving
  worker's peak RSS (``VmHWM`` of the gunicorn worker, a child of the serve process, after the load).

Every runtime gets the same threads, printed before the figures: TensorFlow's intra-op pool, ONNX
Runtime's intra-op threads and ``torch.set_num_threads`` all equal the cores this process may use
(``os.sched_getaffinity``) or ``--threads N``; inter-op pools are 1 thread each. The server is pinned to that
many cores, so its worker's intra-op pool has the same size. The CPU model and its int8/bf16 matrix flags
(avx512_vnni, avx512_bf16, AMX) are printed first: int8's speed-up depends on them.

Offline, the Predictors are timed on ``predict_entities`` (no scores). On TensorFlow that runs Viterbi
alone; the ONNX graph always computes the path probabilities as well (one graph serves both calls), so
the ONNX figures include that work. `serve` asks every runtime for scores.

Our model is albert_tiny-sized (4 layers, hidden 312, 12 heads, FFN 1248, embeddings 128) + BiLSTM 128 +
CRF with random weights: speed does not depend on the weights. Every offline contender gets batches of
sentences sorted by length. ``--quick`` is a smoke run: 200 sentences (50 at batch size 1), 1 pass, 1 s
endpoint loads.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.modeling.albert import ALBERT_TINY  # noqa: E402
from hugging_face import albert_for_token_classification  # noqa: E402
from tiny_model import msra_texts, random_tiny_model  # noqa: E402

BATCH_SIZES = (1, 8, 64)
#: Sentences at batch size 1 (the full set takes too long there).
BATCH_ONE_SENTENCES = 1000
SERVING_RUNTIMES = ("tensorflow", "onnx", "onnx-int8")
CPU_FLAGS = ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
#: BIOES over LOC, ORG and PER, as the random tiny model's labels.
NUM_LABELS = 13

Run = Callable[[list[str]], object]


# --------------------------------------------------------------------------------------------- machine
def cpu_description() -> str:
    """The CPU model and which of ``CPU_FLAGS`` it has, from /proc/cpuinfo."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        return "CPU: /proc/cpuinfo is not readable"
    marks = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in CPU_FLAGS)
    return f"CPU: {model}; {marks}"


def set_threads(threads: int) -> str:
    """Give TensorFlow and PyTorch ``threads`` intra-op threads and 1 inter-op thread (before either runs);
    describe the settings of every runtime."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    settings = [f"TensorFlow intra-op {tf.config.threading.get_intra_op_parallelism_threads()} "
                f"(inter-op {tf.config.threading.get_inter_op_parallelism_threads()})",
                f"ONNX Runtime intra-op {threads} (inter-op 1, no spinning)"]
    try:
        import torch
    except ImportError:
        settings.append("PyTorch not installed")
    else:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        settings.append(f"PyTorch {torch.get_num_threads()} (inter-op {torch.get_num_interop_threads()})")
    return "threads: " + "; ".join(settings)


# ---------------------------------------------------------------------------------------------- timing
def rate(run: Run, texts: list[str]) -> float:
    """Sentences/s of one call of ``run`` on ``texts``."""
    started = time.perf_counter()
    run(texts)
    return len(texts) / (time.perf_counter() - started)


def timed(run: Run, texts: list[str]) -> float:
    """Sentences/s after a warm-up call (tracing, allocations)."""
    run(texts[:256])
    return rate(run, texts)


def by_length(texts: list[str], size: int) -> list[list[str]]:
    ordered = sorted(texts, key=len)
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]


# ----------------------------------------------------------------------------------------- contenders
def predictor_runner(predictor, batch_size: int) -> Run:
    """``predictor`` (any runtime) at ``batch_size`` windows per core call; the core is shared."""
    resized = copy.copy(predictor)
    resized.batch_size = batch_size
    return lambda texts: resized.predict_entities([list(text) for text in texts])


def bench_predictor(predictor, texts: list[str]) -> float:
    """One warmed-up pass of ``predictor`` at its own batch size (bench/plot_throughput.py uses it)."""
    return timed(predictor_runner(predictor, predictor.batch_size), texts)


def saved_model_runners(path: Path) -> Callable[[int], Run]:
    """The SavedModel's ``serving_default`` signature, called on ``batch_size`` texts at a time."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]

    def runner(batch_size: int) -> Run:
        def run(texts: list[str]) -> None:
            for batch in by_length(texts, batch_size):
                signature(text=tf.constant([text.encode() for text in batch]))["entity_counts"].numpy()

        return run

    return runner


def hugging_face_inputs(batch: list[str], vocabulary: dict[str, int]):
    """``(input_ids, attention_mask)`` int64 numpy arrays, [CLS] text [SEP] right-padded; characters get
    ids as they come (the speed does not depend on which)."""
    import numpy as np

    width = max(len(text) for text in batch) + 2
    ids = np.zeros((len(batch), width), dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, text in enumerate(batch):
        tokens = [2] + [vocabulary.setdefault(char, 5 + len(vocabulary) % 21000) for char in text] + [3]
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
    return ids, mask


def hugging_face_model():
    return albert_for_token_classification(ALBERT_TINY.to_dict(), num_labels=NUM_LABELS).eval()


def hugging_face_runners(model) -> Callable[[int], Run]:
    """HF ``AlbertForTokenClassification`` on PyTorch, argmax per token, ``batch_size`` sentences a call."""
    import torch

    vocabulary: dict[str, int] = {}

    def runner(batch_size: int) -> Run:
        def run(texts: list[str]) -> None:
            with torch.inference_mode():
                for batch in by_length(texts, batch_size):
                    ids, mask = (torch.from_numpy(array) for array in hugging_face_inputs(batch, vocabulary))
                    model(input_ids=ids, attention_mask=mask).logits.argmax(-1).tolist()

        return run

    return runner


def bench_hugging_face(texts: list[str], threads: int) -> float | str:
    """One warmed-up pass of the HF model, 128 sentences a batch (bench/plot_throughput.py uses it)."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as error:
        return f"skipped ({error})"
    torch.set_num_threads(threads)
    return timed(hugging_face_runners(hugging_face_model())(128), texts)


def optimum_runners(model, directory: Path, threads: int) -> Callable[[int], Run]:
    """The HF model exported to ONNX by Optimum and run on ONNX Runtime, with our session options.

    Raises ImportError when ``optimum.onnxruntime`` is not importable."""
    import torch
    from optimum.onnxruntime import ORTModelForTokenClassification

    from albert_ner.runtimes.onnx_runtime import session_options

    model.save_pretrained(directory)
    exported = ORTModelForTokenClassification.from_pretrained(
        directory, export=True, provider="CPUExecutionProvider", session_options=session_options(threads))
    vocabulary: dict[str, int] = {}

    def runner(batch_size: int) -> Run:
        def run(texts: list[str]) -> None:
            for batch in by_length(texts, batch_size):
                ids, mask = (torch.from_numpy(array) for array in hugging_face_inputs(batch, vocabulary))
                exported(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
                         ).logits.argmax(-1).tolist()

        return run

    return runner


def jiagu_runners() -> Callable[[int], Run]:
    """Jiagu's perceptron, one sentence at a time whatever the batch size. Raises ImportError without it."""
    import jiagu

    def run(texts: list[str]) -> None:
        for text in texts:
            jiagu.ner(list(text))

    return lambda batch_size: run


@dataclass
class Contender:
    name: str
    #: From a batch size to the function that tags a list of texts; None when skipped.
    runner: Callable[[int], Run] | None
    skipped: str = ""
    #: Sentences/s of each pass, by batch size.
    rates: dict[int, list[float]] = field(default_factory=dict)


def optional(name: str, make: Callable[[], Callable[[int], Run]],
             failures: tuple[type[Exception], ...] = (ImportError,)) -> Contender:
    """A contender whose libraries may be missing: skipped (and why) when an import fails."""
    try:
        return Contender(name, make())
    except failures as error:
        return Contender(name, None, f"skipped ({type(error).__name__}: {error})")


def measure(contenders: Sequence[Contender], texts_at: Callable[[int], list[str]], passes: int) -> None:
    """Fill each contender's ``rates``: per batch size, a warm-up call each, then ``passes`` rounds in which
    every contender runs once."""
    active = [contender for contender in contenders if contender.runner is not None]
    for batch_size in BATCH_SIZES:
        texts = texts_at(batch_size)
        runs = []
        for contender in active:
            run = contender.runner(batch_size)
            run(texts[:max(4 * batch_size, 32)])
            runs.append((contender, run))
        for number in range(passes):
            for contender, run in runs:
                contender.rates.setdefault(batch_size, []).append(rate(run, texts))
                print(f"  batch {batch_size}, pass {number + 1}: {contender.name}: "
                      f"{contender.rates[batch_size][-1]:,.0f} sentences/s", flush=True)


# -------------------------------------------------------------------------------------------- endpoint
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(base: Path, runtime: str, threads: int, log_path: Path, workers: int = 1,
                 environ: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """`serve` on ``base/model`` with ``ALBERT_NER_RUNTIME=runtime`` and ``workers`` workers, pinned to
    ``threads`` cores when this process may use more (each worker's intra-op pool is those cores divided by
    the workers); ``environ`` adds to its environment."""
    port = free_port()
    environ = dict(os.environ, SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(port),
                   ALBERT_NER_BIND_HOST="127.0.0.1", ALBERT_NER_RUNTIME=runtime,
                   SAGEMAKER_MODEL_SERVER_WORKERS=str(workers), **(environ or {}))
    cores = sorted(os.sched_getaffinity(0))
    pin = (lambda: os.sched_setaffinity(0, cores[:threads])) if threads < len(cores) else None
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "container" / "ner" / "serve")], env=environ,
                                   stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    tail = log_path.read_text(errors="replace").splitlines()[-20:]
    raise SystemExit(f"the server ({runtime}) did not become ready; its log ends:\n" + "\n".join(tail))


def load(port: int, texts: list[str], clients: int, seconds: float) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, requests/s, errors) with ``clients`` threads sending one text per request."""
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        index = number * 997
        while time.monotonic() < stop:
            body = json.dumps({"text": texts[index % len(texts)]}, ensure_ascii=False).encode()
            started = time.perf_counter()
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            errors[0] += response.status != 200
            index += 1

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return quantile(0.5), quantile(0.99), len(latencies) / elapsed, errors[0]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers, for the serve process)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def gunicorn_workers(serve: int) -> list[int]:
    """The gunicorn workers of the `serve` process ``serve``: its children when gunicorn runs alone, the
    children of the gunicorn master it forked beside nginx otherwise."""
    ours = [pid for pid in children(serve) if b"nginx" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [worker for pid in ours for worker in children(pid)] or ours


def peak_rss_mib(pid: int) -> float | None:
    """``VmHWM`` of ``pid`` in MiB; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


@dataclass
class EndpointResult:
    runtime: str
    #: (clients, p50 ms, p99 ms, requests/s, errors)
    loads: list[tuple[int, float, float, float, int]]
    #: The largest worker's peak RSS, and how many workers there were.
    peak_rss_mib: float | None
    workers: int


def bench_endpoint(base: Path, runtime: str, texts: list[str], seconds: float, threads: int, workers: int = 1
                   ) -> EndpointResult:
    process, port = start_server(base, runtime, threads, base / f"serve-{runtime}-{workers}.log", workers)
    try:
        load(port, texts, 1, min(2.0, seconds))  # warm-up
        loads = [(clients, *load(port, texts, clients, seconds)) for clients in (1, 8)]
        peaks = [peak for peak in map(peak_rss_mib, gunicorn_workers(process.pid)) if peak is not None]
    finally:
        process.terminate()
        process.wait(60)
    result = EndpointResult(runtime, loads, max(peaks, default=None), len(peaks))
    for clients, p50, p99, requests, errors in loads:
        print(f"  serve {runtime} ({workers} worker(s)), {clients} client(s): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"{requests:,.0f} requests/s, {errors} errors", flush=True)
    print(f"  serve {runtime} ({workers} worker(s)): worker peak RSS {format_mib(result.peak_rss_mib)} MiB", flush=True)
    return result


# ---------------------------------------------------------------------------------------------- report
def format_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def median_and_range(rates: list[float]) -> str:
    if len(rates) == 1:
        return f"{rates[0]:,.0f}"
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def offline_table(contenders: Sequence[Contender], sentences_at: Callable[[int], int], passes: int) -> list[str]:
    figure = f"median of {passes} passes (min-max)" if passes > 1 else "1 pass"
    lines = ["| offline sentences/s, " + figure + " | "
             + " | ".join(f"batch {size} ({sentences_at(size):,} sentences)" for size in BATCH_SIZES) + " |",
             "|---|" + "---:|" * len(BATCH_SIZES)]
    measured = [contender for contender in contenders if contender.runner is not None]
    lines += [f"| {contender.name} | " + " | ".join(median_and_range(contender.rates[size]) for size in BATCH_SIZES)
              + " |" for contender in measured]
    skipped = [contender for contender in contenders if contender.runner is None]
    if skipped:
        lines += [""] + [f"- {contender.name}: {contender.skipped}" for contender in skipped]
    return lines


def ratio_table(by_name: dict[str, Contender], ratios: Sequence[tuple[str, str, str, float]]) -> list[str]:
    lines = ["| ratio of medians | goal | " + " | ".join(f"batch {size}" for size in BATCH_SIZES) + " |",
             "|---|---:|" + "---:|" * len(BATCH_SIZES)]
    for label, numerator, denominator, goal in ratios:
        cells = []
        for size in BATCH_SIZES:
            top, bottom = by_name[numerator], by_name[denominator]
            if top.runner is None or bottom.runner is None:
                cells.append("n/a")
                continue
            value = statistics.median(top.rates[size]) / statistics.median(bottom.rates[size])
            cells.append(f"{value:.2f}x {'met' if value >= goal else 'not met'}")
        lines.append(f"| {label} | >= {goal:g}x | " + " | ".join(cells) + " |")
    return lines


def endpoint_table(results: Sequence[EndpointResult]) -> list[str]:
    lines = ["| `POST /invocations`, one sentence per request | clients | p50 ms | p99 ms | requests/s | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {result.runtime} | {clients} | {p50:.1f} | {p99:.1f} | {requests:,.0f} | {errors} |"
              for result in results for clients, p50, p99, requests, errors in result.loads]
    lines += ["", "| serving worker (after the loads) | peak RSS (VmHWM), MiB |", "|---|---:|"]
    lines += [f"| {result.runtime} ({result.workers} worker{'s' if result.workers != 1 else ''}) | "
              f"{format_mib(result.peak_rss_mib)} |" for result in results]
    return lines


# ------------------------------------------------------------------------------------------------ main
TF, TF_DICT = "TF Predictor", "TF Predictor + jieba dictionary (349k words)"
ONNX_INT8, ONNX_INT8_DICT = "ONNX int8 Predictor (onnx-int8)", "ONNX int8 Predictor + jieba dictionary"
HF_TORCH = "Hugging Face AlbertForTokenClassification, PyTorch float32 (argmax)"
RATIOS = [("ONNX int8 / HF PyTorch float32", ONNX_INT8, HF_TORCH, 3.0),
          ("ONNX int8 / TF Predictor", ONNX_INT8, TF, 2.0),
          ("ONNX int8 + dictionary / TF Predictor + dictionary", ONNX_INT8_DICT, TF_DICT, 2.0)]


@dataclass
class Models:
    """The random tiny model without the dictionary (``plain``) and with it (``dictionary``, in
    ``opt_ml/model``, which `serve` serves): each directory holds its SavedModel and its ONNX files."""

    plain: Path
    dictionary: Path
    predictor: object
    dictionary_predictor: object
    saved_model: Path
    dictionary_saved_model: Path


def build_models(root: Path, texts: list[str]) -> Models:
    from albert_ner.export import export_saved_model
    from albert_ner.lexicon import choose_lexicon
    from albert_ner.runtimes.onnx_export import export_onnx

    def build(model_dir: Path, lexicon=None):
        predictor = random_tiny_model(model_dir, texts, lexicon=lexicon)
        started = time.perf_counter()
        saved_model = export_saved_model(predictor, model_dir)
        export_onnx(predictor, model_dir)
        print(f"  {model_dir.name}: SavedModel and ONNX exported in {time.perf_counter() - started:.0f} s",
              flush=True)
        return predictor, saved_model

    plain, dictionary = root / "plain", root / "opt_ml" / "model"
    predictor, saved_model = build(plain)
    dictionary_predictor, dictionary_saved_model = build(dictionary, choose_lexicon("general", None))
    return Models(plain, dictionary, predictor, dictionary_predictor, saved_model, dictionary_saved_model)


def contenders(models: Models, root: Path, threads: int) -> list[Contender]:
    from albert_ner.prediction import Predictor

    def onnx(model_dir: Path, runtime: str) -> Callable[[int], Run]:
        predictor = Predictor.load(model_dir, runtime=runtime, threads=threads)
        return lambda batch_size: predictor_runner(predictor, batch_size)

    def tensorflow(predictor) -> Callable[[int], Run]:
        return lambda batch_size: predictor_runner(predictor, batch_size)

    def hugging_face_onnx() -> Callable[[int], Run]:
        return optimum_runners(hugging_face_model(), root / "hugging_face", threads)

    return [
        Contender(TF, tensorflow(models.predictor)),
        Contender(TF_DICT, tensorflow(models.dictionary_predictor)),
        Contender("TF SavedModel (text in)", saved_model_runners(models.saved_model)),
        Contender("TF SavedModel + jieba dictionary (in-graph matching)",
                  saved_model_runners(models.dictionary_saved_model)),
        Contender("ONNX float32 Predictor (onnx)", onnx(models.plain, "onnx")),
        Contender("ONNX float32 Predictor + jieba dictionary", onnx(models.dictionary, "onnx")),
        Contender(ONNX_INT8, onnx(models.plain, "onnx-int8")),
        Contender(ONNX_INT8_DICT, onnx(models.dictionary, "onnx-int8")),
        optional(HF_TORCH, lambda: hugging_face_runners(hugging_face_model())),
        # Optimum's export is not exercised where Optimum is absent: any failure there skips it, with the error.
        optional("Hugging Face, ONNX Runtime float32 through Optimum (argmax)", hugging_face_onnx,
                 failures=(Exception,)),
        optional("Jiagu (perceptron, one sentence at a time)", jiagu_runners),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="intra-op threads of every runtime (default: the usable cores)")
    parser.add_argument("--passes", type=int, default=3, help="offline passes per contender and batch size")
    parser.add_argument("--seconds", type=float, default=15, help="duration of each endpoint load")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200 sentences (50 at batch size 1), 1 pass, 1 s endpoint loads")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--sentences", type=int, help="the first N test sentences only (default: all 5,000; batch "
                        f"size 1 takes the first {BATCH_ONE_SENTENCES:,} of them or a quarter, whichever is fewer)")
    args = parser.parse_args()
    if args.quick:
        args.passes, args.seconds = 1, 1
    cores = len(os.sched_getaffinity(0))
    threads = args.threads or cores
    machine = cpu_description()
    print(machine, flush=True)
    settings = set_threads(threads)
    print(settings + f"; serve: 1 worker on {min(threads, cores)} cores", flush=True)
    import tensorflow as tf

    texts = msra_texts()[:200 if args.quick else args.sentences]
    batch_one = 50 if args.quick else min(BATCH_ONE_SENTENCES, max(1, len(texts) // 4))

    def texts_at(batch_size: int) -> list[str]:
        return texts[:batch_one] if batch_size == 1 else texts

    header = (f"MSRA test: {len(texts)} sentences, {sum(map(len, texts))} characters (batch size 1: the first "
              f"{len(texts_at(1))}); TensorFlow {tf.__version__}")
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        runners = contenders(build_models(root, texts), root, threads)
        for contender in runners:
            if contender.runner is None:
                print(f"  {contender.name}: {contender.skipped}", flush=True)
        measure(runners, texts_at, args.passes)
        endpoint = [bench_endpoint(root / "opt_ml", runtime, texts, args.seconds, threads)
                    for runtime in SERVING_RUNTIMES]

    by_name = {contender.name: contender for contender in runners}
    lines = offline_table(runners, lambda size: len(texts_at(size)), args.passes)
    lines += [""] + ratio_table(by_name, RATIOS)
    lines += ["", f"`serve` on loopback, the model with the dictionary, {args.seconds:g} s per load:", ""]
    lines += endpoint_table(endpoint)
    print("\n" + "\n".join(lines))
    if args.markdown:
        preamble = "\n\n".join([machine, settings, header])
        args.markdown.write_text(preamble + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
