#!/usr/bin/env python3
"""`serve` under abuse, per runtime: short requests beside a huge one, a batch-transform body's memory, slow clients.

    python bench/serve_under_load.py [--model-dir DIR] [--seconds 10] [--runtimes tensorflow onnx-int8]

For each runtime, the real `serve` process on loopback (one worker on all the cores this process may use,
nginx in front where it is installed), on the random albert_tiny-sized model with jieba's dictionary
(built and exported first unless ``--model-dir``, a directory named ``model``, is given):

1. p50 and p99 of 2-character requests from 4 clients, alone, and while one request of 100,000 lines of
   10 characters runs (``ALBERT_NER_MAX_TEXTS_PER_REQUEST=0`` lets it in; the default refuses it with 413):
   the batcher's fair share is what keeps the short ones at about one model batch;
2. batch transform (``SAGEMAKER_BATCH=true``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB=100``): the worker's RSS before
   and its peak (``VmHWM``) while it answers a 100 MB body of short lines, sampled for ``--seconds`` after
   the body is sent (the answer streams; the body would take far longer to finish);
3. ``/ping`` p50 and slowest of 20 pings while 20 clients hold sockets with headers and 3 of 1,000 declared
   body bytes, with nginx in front and, for contrast, with ``ALBERT_NER_NGINX=off``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "ner"))

from albert_ner.lexicon import choose_lexicon  # noqa: E402
from albert_ner.prediction import Predictor  # noqa: E402
from albert_ner.runtimes.onnx_export import export_onnx  # noqa: E402
from bench_inference import cpu_description, gunicorn_workers, load, start_server  # noqa: E402
from tiny_model import msra_texts, random_tiny_model  # noqa: E402

SHORT = "好的"
LARGE_LINES = 100_000
SLOW_CLIENTS = 20


def post(port: int, body: bytes, content_type: str, timeout: float = 600) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def short_requests(port: int, seconds: float, beside_large: bool) -> tuple[float, float, str]:
    """(p50 ms, p99 ms, what the large request answered) of 2-character requests from 4 clients."""
    answer = ["still running when the short requests ended"]
    if beside_large:
        body = ("北京市海淀区中关村。\n" * LARGE_LINES).encode()

        def large() -> None:
            started = time.monotonic()
            status = post(port, body, "text/plain")
            answer[0] = f"{status} after {time.monotonic() - started:.0f} s"

        threading.Thread(target=large, daemon=True).start()
        time.sleep(1)  # it is in the batcher
    p50, p99, _, errors = load(port, [SHORT], 4, seconds)
    assert errors == 0, f"{errors} short requests failed"
    return p50, p99, answer[0] if beside_large else "none"


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def batch_transform_memory(port: int, worker: int, seconds: float) -> tuple[float, float, int]:
    """(RSS before MiB, peak RSS while answering MiB, bytes of answer received) for a 100 MB body."""
    before = vm_kib(worker, "VmRSS") / 1024
    line = "张三在北京工作。\n".encode()
    body = line * (100 * 1024 * 1024 // len(line))
    received = [0]

    def send() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds + 120)
        try:
            connection.request("POST", "/invocations", body, {"Content-Type": "text/plain"})
            response = connection.getresponse()
            stop = time.monotonic() + seconds
            while time.monotonic() < stop and (chunk := response.read1(65536)):
                received[0] += len(chunk)
        except OSError:
            pass
        finally:
            connection.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sender.join(seconds + 60)
    return before, vm_kib(worker, "VmHWM") / 1024, received[0]


def ping_beside_slow_clients(port: int) -> tuple[float, float, int]:
    """(p50 ms, slowest ms, timeouts) of 20 pings while 20 slow clients hold sockets."""
    held = []
    for _ in range(SLOW_CLIENTS):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        connection.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n{\"t")
        held.append(connection)
    latencies, timeouts = [], 0
    for _ in range(20):
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            connection.getresponse().read()
            latencies.append((time.perf_counter() - started) * 1000)
        except OSError:
            timeouts += 1
            latencies.append(2000.0)
        time.sleep(0.1)
    for connection in held:
        connection.close()
    return statistics.median(latencies), max(latencies), timeouts


def serving(base: Path, runtime: str, threads: int, name: str, environ: dict[str, str]):
    return start_server(base, runtime, threads, base / f"under-load-{runtime}-{name}.log", 1, environ)


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(60)
    except Exception:  # noqa: BLE001 - a server that will not drain is killed
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runtimes", nargs="+", default=["tensorflow", "onnx-int8"])
    args = parser.parse_args()
    print(cpu_description())
    model_dir = args.model_dir
    if model_dir is None:
        model_dir = Path(tempfile.mkdtemp(prefix="under-load-")) / "model"
        random_tiny_model(model_dir, msra_texts(), lexicon=choose_lexicon("general", None))
        export_onnx(Predictor.load(model_dir, runtime="tensorflow"), model_dir)
    base, threads = model_dir.parent, len(os.sched_getaffinity(0))
    print(f"one worker, {threads} intra-op threads; model {model_dir}")
    rows = []
    for runtime in args.runtimes:
        process, port = serving(base, runtime, threads, "realtime", {"ALBERT_NER_MAX_TEXTS_PER_REQUEST": "0"})
        try:
            load(port, [SHORT], 1, 2)  # warm-up
            alone = short_requests(port, args.seconds, beside_large=False)
            beside = short_requests(port, args.seconds, beside_large=True)
            ping = ping_beside_slow_clients(port)
        finally:
            stop(process)
        process, port = serving(base, runtime, threads, "no-nginx", {"ALBERT_NER_NGINX": "off"})
        try:
            ping_without_nginx = ping_beside_slow_clients(port)
        finally:
            stop(process)
        process, port = serving(base, runtime, threads, "batch", {"SAGEMAKER_BATCH": "true",
                                                                 "SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"})
        try:
            memory = batch_transform_memory(port, gunicorn_workers(process.pid)[0], args.seconds)
        finally:
            stop(process)
        rows.append((runtime, alone, beside, memory, ping, ping_without_nginx))
        print(f"  {runtime}: done", flush=True)
    print(f"\n2-character requests from 4 clients for {args.seconds:.0f} s; the large request is {LARGE_LINES:,} "
          "lines of 10 characters")
    print("| runtime | alone p50 / p99 ms | beside the large request p50 / p99 ms | the large request answered |")
    print("|---|---:|---:|---|")
    for runtime, alone, beside, *_ in rows:
        print(f"| {runtime} | {alone[0]:.1f} / {alone[1]:.1f} | {beside[0]:.1f} / {beside[1]:.1f} | {beside[2]} |")
    print(f"\nbatch transform, a 100 MB body of 8-character lines, sampled for {args.seconds:.0f} s")
    print("| runtime | worker RSS before, MiB | peak RSS while answering, MiB | answer bytes received |")
    print("|---|---:|---:|---:|")
    for runtime, _, _, memory, *_ in rows:
        print(f"| {runtime} | {memory[0]:,.0f} | {memory[1]:,.0f} | {memory[2]:,} |")
    print(f"\n/ping while {SLOW_CLIENTS} slow clients hold sockets (20 pings, 2 s timeout)")
    print("| runtime | front | p50 ms | slowest ms | timeouts |")
    print("|---|---|---:|---:|---:|")
    for runtime, *_, ping, ping_without_nginx in rows:
        for front, (p50, slowest, timeouts) in (("nginx", ping), ("gunicorn alone", ping_without_nginx)):
            print(f"| {runtime} | {front} | {p50:.1f} | {slowest:.0f} | {timeouts} |")


if __name__ == "__main__":
    main()
