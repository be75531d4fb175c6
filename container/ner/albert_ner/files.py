"""Reading input files with errors that name them, and writing outputs so that only complete ones appear.

SageMaker uploads ``/opt/ml/model`` and ``/opt/ml/output`` as they are when the job ends, and a spot
interruption can end it at any moment: a half-written report or weights file must never be what a user
downloads. Every output is written under a temporary name in the same directory, then moved into place
by :func:`replace_atomically`, the one place that does the rename.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from albert_ner.errors import DataError

PathLike = str | os.PathLike[str]


def read_text(path: PathLike) -> str:
    """Decode a UTF-8 file (a leading BOM is dropped), naming the line and byte offset of any bad byte."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the file: {error.strerror}", path) from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        raise DataError(
            f"not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} (byte {offset - line_start + 1} "
            f"of the line) is {error.reason}; convert the file to UTF-8 (e.g. iconv -f GBK -t UTF-8)",
            path,
            data.count(b"\n", 0, offset) + 1,
        ) from None


def channel_files(path: Path) -> list[Path]:
    """The data files of a SageMaker channel, in sorted path order, hidden ones (names starting with ".",
    at any depth) left out; a path that is not a directory (a file, a Pipe-mode FIFO) is its own one file.

    Every channel is walked this way, so what a job reads from a channel never depends on which channel it is.
    """
    if not path.is_dir():
        return [path]
    return sorted(file for file in path.rglob("*")
                  if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts))


def replace_atomically(temporary: Path, path: Path) -> None:
    """Move a finished file or directory ``temporary`` to ``path``, replacing what is there.

    ``temporary`` must sit in ``path``'s directory, so that the move is a rename. A file replaces a file in
    one step. A directory cannot be renamed over a non-empty one, so the old one is first renamed aside and
    removed after: at every moment ``path`` is either the old complete tree or the new one, or (between
    the two renames) absent, never a mix.
    """
    if temporary.parent.resolve() != path.parent.resolve():
        raise ValueError(f"{temporary} is not beside {path}: the move would not be a rename")
    if temporary.is_dir() and path.is_dir() and not path.is_symlink():
        aside = path.with_name(f".replaced.{path.name}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        os.replace(temporary, path)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(temporary, path)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; it replaces ``path`` when the block ends normally.

    The name keeps ``path``'s suffix (Keras chooses the weights format by it). If the block fails, what
    it wrote is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".partial.{path.name}")
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    replace_atomically(temporary, path)


@contextlib.contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if absent) for the block, waiting for whoever holds
    it; ``what`` names the work in the log while waiting. ``flock`` locks hold across processes on one machine
    and on NFS mounts such as EFS (as byte-range locks), so jobs sharing a cache volume take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.getLogger(__name__).info("%s: another process holds %s; waiting for it", what, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".partial.{path.name}.")
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; outputs are meant to be read by others
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        replace_atomically(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
