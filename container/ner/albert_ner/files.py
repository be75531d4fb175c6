"""Writing outputs so that only complete files ever appear.

SageMaker uploads ``/opt/ml/model`` and ``/opt/ml/output`` as they are when the job ends, and a spot
interruption can end it at any moment: a half-written report or weights file must never be what a user
downloads. Everything is written to a temporary name in the same directory, flushed, then renamed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; outputs are meant to be read by others
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))
