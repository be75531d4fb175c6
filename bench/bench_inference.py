#!/usr/bin/env python3
"""Inference speed on this machine's CPU: offline throughput and the `serve` endpoint's latency.

    python bench/bench_inference.py [--quick] [--seconds 15] [--markdown PATH]

Measured in one run, on the MSRA test set (5,000 sentences; `python data/fetch_msra.py` fetches it):

- offline sentences/s: our Python Predictor, our SavedModel (in-graph tokenization, windowing and Viterbi),
  each without a lexicon and with jieba's 349k-word dictionary (the default job's, matched in Python and in
  the graph respectively), a Hugging Face ``AlbertForTokenClassification`` of the same size (PyTorch,
  argmax head, when transformers and torch are installed) and Jiagu's perceptron tagger (``pip install
  jiagu``; skipped when absent);
- ``POST /invocations`` (one ``{"text": ...}`` per request, the real `serve` process on loopback, serving the
  model with the dictionary): p50 and p99 latency and requests/s with 1 and with 8 concurrent clients.

Our model is albert_tiny-sized (4 layers, hidden 312, 12 heads, FFN 1248, embeddings 128) + BiLSTM 128 +
CRF with random weights: speed does not depend on the weights. Every offline contender gets batches of
sentences sorted by length (128 per batch; the SavedModel 64) and the same threads.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.modeling.albert import ALBERT_TINY  # noqa: E402
from hugging_face import albert_for_token_classification  # noqa: E402
from tiny_model import msra_texts, random_tiny_model  # noqa: E402


def timed(run, texts: list[str]) -> float:
    run(texts[:256])  # warm-up: tracing, allocations
    started = time.perf_counter()
    run(texts)
    return len(texts) / (time.perf_counter() - started)


def by_length(texts: list[str], size: int) -> list[list[str]]:
    ordered = sorted(texts, key=len)
    return [ordered[start:start + size] for start in range(0, len(ordered), size)]


def bench_predictor(predictor, texts: list[str]) -> float:
    return timed(lambda batch: predictor.predict_entities([list(text) for text in batch]), texts)


def bench_saved_model(path: Path, texts: list[str]) -> float:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(batch_texts: list[str]) -> None:
        for batch in by_length(batch_texts, 64):
            signature(text=tf.constant([text.encode() for text in batch]))["entity_counts"].numpy()

    return timed(run, texts)


def bench_hugging_face(texts: list[str], threads: int) -> float | str:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as error:
        return f"skipped ({error})"
    torch.set_num_threads(threads)
    model = albert_for_token_classification(ALBERT_TINY.to_dict(), num_labels=13).eval()
    vocabulary: dict[str, int] = {}

    def run(batch_texts: list[str]) -> None:
        with torch.inference_mode():
            for batch in by_length(batch_texts, 128):
                width = max(len(text) for text in batch) + 2
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, text in enumerate(batch):
                    tokens = [2] + [vocabulary.setdefault(char, 5 + len(vocabulary) % 21000) for char in text] + [3]
                    ids[row, :len(tokens)] = torch.tensor(tokens)
                    mask[row, :len(tokens)] = 1
                model(input_ids=ids, attention_mask=mask).logits.argmax(-1).tolist()

    return timed(run, texts)


def bench_jiagu(texts: list[str]) -> float | str:
    try:
        import jiagu
    except ImportError:
        return "skipped (pip install jiagu)"

    def run(batch_texts: list[str]) -> None:
        for text in batch_texts:
            jiagu.ner(list(text))

    return timed(run, texts)


# ------------------------------------------------------------------------------------------ endpoint
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(base: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    environ = dict(os.environ, SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(port),
                   ALBERT_NER_BIND_HOST="127.0.0.1")
    process = subprocess.Popen([sys.executable, str(REPO / "container" / "ner" / "serve")], env=environ,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15, help="duration of each endpoint load")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 sentences, 1 s endpoint loads")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 1
    import tensorflow as tf

    from albert_ner.export import export_saved_model
    from albert_ner.lexicon import choose_lexicon
    from albert_ner.resources import available_cores

    threads = available_cores()
    texts = msra_texts()[:300 if args.quick else None]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary) / "opt_ml"
        plain = Path(temporary) / "plain"
        predictor = random_tiny_model(plain, texts)
        saved_model = export_saved_model(predictor, plain)
        lexicon = choose_lexicon("general", None)
        with_lexicon = random_tiny_model(base / "model", texts, lexicon=lexicon)
        saved_with_lexicon = export_saved_model(with_lexicon, base / "model")
        header = (f"MSRA test: {len(texts)} sentences, {sum(map(len, texts))} characters; {threads} CPU threads; "
                  f"TensorFlow {tf.__version__}")
        print(header, flush=True)
        for name, run in [
            ("albert-ner Python Predictor (TF, albert_tiny + BiLSTM + CRF)", lambda: bench_predictor(predictor, texts)),
            ("albert-ner SavedModel (TF, same model, text in)", lambda: bench_saved_model(saved_model, texts)),
            ("albert-ner Python Predictor + jieba dictionary (349k words)",
             lambda: bench_predictor(with_lexicon, texts)),
            ("albert-ner SavedModel + jieba dictionary (in-graph matching)",
             lambda: bench_saved_model(saved_with_lexicon, texts)),
            ("Hugging Face AlbertForTokenClassification (PyTorch, albert_tiny, argmax)",
             lambda: bench_hugging_face(texts, threads)),
            ("Jiagu 0.2 (perceptron)", lambda: bench_jiagu(texts)),
        ]:
            value = run()
            rows.append((name, f"{value:,.0f}" if isinstance(value, float) else value))
            print(f"  {name}: {rows[-1][1]} sentences/s", flush=True)

        process, port = start_server(base)
        try:
            load(port, texts, 1, 2)  # warm-up
            endpoint = [(clients, *load(port, texts, clients, args.seconds)) for clients in (1, 8)]
        finally:
            process.terminate()
            process.wait(60)

    lines = ["| offline, MSRA test set | sentences/s |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| `POST /invocations`, one sentence per request | p50 ms | p99 ms | requests/s | errors |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {clients} client{'s' if clients > 1 else ''} | {p50:.1f} | {p99:.1f} | {rate:,.0f} | {errors} |"
              for clients, p50, p99, rate, errors in endpoint]
    print("\n" + "\n".join(lines))
    if args.markdown:
        args.markdown.write_text(header + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
