"""What the machine offers and how fast the job goes: cores, memory, devices, throughput for the log.

TensorFlow is imported only inside the functions that ask it about devices: the serving settings size the
server from the cores and memory in gunicorn's master, which must never initialise TensorFlow.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


def describe_devices() -> str:
    """The devices TensorFlow sees, with GPU names, e.g. ``CPU, GPU:0 NVIDIA H100 80GB HBM3``."""
    import tensorflow as tf

    parts = ["CPU"]
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        name = tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
        parts.append(f"GPU:{index} {name}")
    return ", ".join(parts)


def host_memory_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB.

    The peak is Linux's ``VmHWM``, this program's own high-water mark: ``ru_maxrss`` survives ``exec``, so
    a process started by a bigger one (a test, a benchmark, a notebook) would report its parent's peak.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = peak
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current, peak


def gpu_memory_mib() -> list[float]:
    """Peak memory TensorFlow has allocated on each GPU, in MiB (empty without GPUs)."""
    import tensorflow as tf

    peaks = []
    for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
        peaks.append(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"] / 2**20)
    return peaks


def available_cores() -> int:
    """CPUs this process may use: its affinity set, capped by a cgroup v2 CPU quota when there is one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def available_memory_bytes() -> int:
    """Memory this container may still use: MemAvailable, capped by a cgroup v2 limit."""
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            available = min(available or 2**62, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available or 2**30


def default_workers(cores: int, model_dir: Path, on_onnx: bool) -> int:
    """As many workers as memory holds, up to one per 4 cores on TensorFlow (each runs the model on several
    cores; its batches are what scale) and one per core on ONNX Runtime, where 2 one-thread workers
    answered 8 clients 1.27x faster than one two-thread worker (bench/onnx_threads.py). A worker needs its
    runtime (TensorFlow ~600 MiB, ONNX Runtime ~250 MiB) plus a few copies of the weights."""
    weights = model_dir / "model.weights.h5"
    runtime_bytes = (250 if on_onnx else 600) * MIB
    per_worker = runtime_bytes + 3 * (weights.stat().st_size if weights.exists() else 50 * MIB)
    by_memory = max(1, available_memory_bytes() // per_worker)
    return max(1, min(cores if on_onnx else cores // 4, by_memory))


class ThroughputMeter:
    """Training throughput since the last report, and where the steps' time went.

    Only time the loop attributes counts: host time building batches (``data``) and time in the step
    (``step``: dispatching it, plus waiting for the device when the losses are read at a log step).
    Evaluations and checkpoints between two reports therefore do not lower ``sentences_per_sec``.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._steps, self._sentences, self._characters = 0, 0, 0
        self._data_seconds, self._step_seconds = 0.0, 0.0

    def add(self, sentences: int, characters: int, data_seconds: float, step_seconds: float) -> None:
        """One training step over ``sentences`` holding ``characters``, and the time it took."""
        self._steps += 1
        self._sentences += sentences
        self._characters += characters
        self._data_seconds += data_seconds
        self._step_seconds += step_seconds

    def add_wait(self, seconds: float) -> None:
        """Time spent waiting for steps already counted (the device finishing them)."""
        self._step_seconds += seconds

    def report(self) -> Throughput:
        """The rates since the last report (or since the meter was made), and the memory now; starts over."""
        elapsed = max(self._data_seconds + self._step_seconds, 1e-9)
        steps = max(self._steps, 1)
        current, peak = host_memory_mib()
        throughput = Throughput(self._sentences / elapsed, self._characters / elapsed,
                                1000 * self._data_seconds / steps, 1000 * self._step_seconds / steps,
                                current, peak, tuple(gpu_memory_mib()))
        self._reset()
        return throughput


@dataclass(frozen=True)
class Throughput:
    """One report of a :class:`ThroughputMeter`; ``str()`` gives the fields of the log's progress line."""

    sentences_per_sec: float
    chars_per_sec: float
    data_ms: float
    step_ms: float
    host_mem_mib: float
    host_peak_mib: float
    gpu_peak_mib: tuple[float, ...]

    def __str__(self) -> str:
        text = (f"sentences_per_sec={self.sentences_per_sec:.1f} chars_per_sec={self.chars_per_sec:.0f} "
                f"data_ms={self.data_ms:.1f} step_ms={self.step_ms:.1f} "
                f"host_mem_mib={self.host_mem_mib:.0f} host_peak_mib={self.host_peak_mib:.0f}")
        if self.gpu_peak_mib:
            text += " gpu_peak_mib=" + ",".join(f"{value:.0f}" for value in self.gpu_peak_mib)
        return text
