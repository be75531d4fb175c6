"""SIGTERM as a request to stop cleanly: finish the step, save a checkpoint, exit.

SageMaker stops a job (and interrupts managed spot jobs) with SIGTERM and kills it 120 s later; a Python
process running as PID 1 in a container gets no default handler, so without this the job would die
without saving.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("albert_ner.training")


class StopSignal:
    """Turns SIGTERM into a flag the loop checks after each step; the loop then saves a checkpoint and
    raises TrainingStopped. Installed only on the main thread, where Python allows signal handlers."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        log.warning("received %s: saving a checkpoint after the current step, then exiting", self.received)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
