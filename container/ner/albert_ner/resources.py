"""What the job runs on and how fast it goes: devices, memory, throughput for the progress lines."""

from __future__ import annotations

import resource
import time

import tensorflow as tf


def describe_devices() -> str:
    """The devices TensorFlow sees, with GPU names, e.g. ``CPU, GPU:0 NVIDIA H100 80GB HBM3``."""
    parts = ["CPU"]
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        name = tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
        parts.append(f"GPU:{index} {name}")
    return ", ".join(parts)


def host_memory_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = peak
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
                    break
    except OSError:
        pass
    return current, peak


def gpu_memory_mib() -> list[float]:
    """Peak memory TensorFlow has allocated on each GPU, in MiB (empty without GPUs)."""
    peaks = []
    for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
        peaks.append(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"] / 2**20)
    return peaks


class ThroughputMeter:
    """Sentences and characters per second since the last report."""

    def __init__(self) -> None:
        self._since = time.monotonic()
        self._sentences = 0
        self._characters = 0

    def add(self, sentences: int, characters: int) -> None:
        self._sentences += sentences
        self._characters += characters

    def report(self) -> str:
        elapsed = max(time.monotonic() - self._since, 1e-9)
        current, peak = host_memory_mib()
        text = (f"sentences_per_sec={self._sentences / elapsed:.1f} chars_per_sec={self._characters / elapsed:.0f} "
                f"host_mem_mib={current:.0f} host_peak_mib={peak:.0f}")
        gpus = gpu_memory_mib()
        if gpus:
            text += " gpu_peak_mib=" + ",".join(f"{value:.0f}" for value in gpus)
        self._since, self._sentences, self._characters = time.monotonic(), 0, 0
        return text
