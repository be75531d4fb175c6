"""Children that die with the process that started them (Linux's ``prctl(PR_SET_PDEATHSIG)``), so that
a killed server leaves nothing running: nginx and gunicorn's master under `serve`, and the `train` of a
retrain, whose worker may be killed while it runs.

A retrain's `train` is started as ``python -m albert_ner.serving.child_process PARENT_PID train ...``: the
signal is asked for, the parent is checked to be still there (it may have died in between), and then the
process becomes ``python -m albert_ner train ...`` (the request holds through exec), so `train` never
outlives the worker's retrain thread. SIGTERM makes `train` save a
checkpoint and stop, as on SageMaker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int) -> None:
    """Ask Linux to send ``signum`` to this process when the thread that started it ends."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):  # not Linux: children outlive a killed parent
        pass


def command(*arguments: str) -> list[str]:
    """The command line that runs ``albert_ner ARGUMENTS`` as a child dying with this process."""
    return [sys.executable, "-m", "albert_ner.serving.child_process", str(os.getpid()), *arguments]


def main(argv: list[str]) -> int:
    parent, arguments = int(argv[0]), argv[1:]
    die_with_parent(signal.SIGTERM)  # kept through exec
    if os.getppid() != parent:  # the parent died before the request took hold
        return 1
    os.execv(sys.executable, [sys.executable, "-m", "albert_ner", *arguments])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
