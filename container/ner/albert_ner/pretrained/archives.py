"""Unpacking downloaded zip and tar archives without trusting them.

An archive from a mirror or an internal copy is input like any other: an entry named ``../../etc/cron.d/x``
or ``/root/.ssh/authorized_keys``, a symbolic or hard link pointing out of the directory, a device node, or a
few kilobytes that inflate to terabytes would each do harm if unpacked blindly. Every entry is checked before
anything is written, each refusal names the archive and the entry, and the bytes written are counted as
they are written (a zip's declared sizes can lie). The tree is unpacked into a temporary directory beside
the destination and renamed into place only once complete, so a half-extracted tree is never used.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from albert_ner.errors import CheckpointError

#: The largest released Chinese ALBERT (Google's albert_xxlarge_zh) unpacks to under 1 GiB.
DEFAULT_MAX_EXTRACTED_BYTES = 4 * 1024 ** 3
_CHUNK = 1024 * 1024
#: Directory levels an entry may have: checkpoints are a folder or two deep, and a path of thousands of
#: levels only exhausts the file system's limits.
MAX_DEPTH = 32


def extract_archive(archive: Path, destination: Path, max_bytes: int | None = None) -> None:
    """Unpack a .zip, .tar, .tar.gz or .tgz into ``destination`` (which must not exist yet), or refuse.

    ``max_bytes`` caps the unpacked size (default :func:`max_extracted_bytes`).
    """
    max_bytes = max_extracted_bytes() if max_bytes is None else max_bytes
    if destination.exists():
        raise FileExistsError(destination)
    temporary = destination.with_name(f".extracting.{destination.name}.{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        entries = _zip_entries(archive, max_bytes) if zipfile.is_zipfile(archive) else _tar_entries(archive, max_bytes)
        written = 0
        files: set[str] = set()
        for name, is_directory, stream in entries:
            target = temporary.joinpath(*PurePosixPath(name).parts)
            try:
                if is_directory:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if name in files:
                    raise CheckpointError(f"{archive.name}: refused: entry {name!r} appears twice")
                if target == temporary:
                    raise CheckpointError(f"{archive.name}: refused: entry {name!r} is a file with no name")
                files.add(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                assert stream is not None
                with open(target, "xb") as output:
                    while chunk := stream.read(_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise CheckpointError(f"{archive.name}: refused: unpacking entry {name!r} exceeds the "
                                                  f"cap of {max_bytes:,} bytes (a zip bomb, or raise "
                                                  "ALBERT_NER_MAX_EXTRACTED_BYTES)")
                        output.write(chunk)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
                raise CheckpointError(f"{archive.name}: refused: entry {name!r} clashes with an earlier one (a file "
                                      "where a directory is, or the reverse)") from error
            except OSError as error:
                raise CheckpointError(f"{archive.name}: entry {name!r} cannot be unpacked: "
                                      f"{error.strerror or error}") from error
        os.replace(temporary, destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _checked_name(archive: Path, name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise CheckpointError(f"{archive.name}: refused: entry {name!r} has an absolute path")
    if ".." in path.parts:
        raise CheckpointError(f"{archive.name}: refused: entry {name!r} climbs out of the directory (..)")
    if len(path.parts) > MAX_DEPTH or any(len(part.encode("utf-8")) > 255 for part in path.parts):
        raise CheckpointError(f"{archive.name}: refused: entry {name[:80]!r}... is {len(path.parts):,} levels deep or "
                              f"has a name part over 255 bytes (at most {MAX_DEPTH} levels)")
    return str(path)


def _zip_entries(archive: Path, max_bytes: int) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        declared = 0
        for member in members:
            _checked_name(archive, member.filename)
            mode = member.external_attr >> 16
            if not stat.S_IFMT(mode):  # permission bits alone (ZipFile.writestr, DOS zips): a plain entry
                mode = 0
            if stat.S_ISLNK(mode):
                raise CheckpointError(f"{archive.name}: refused: entry {member.filename!r} is a symbolic link")
            if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise CheckpointError(f"{archive.name}: refused: entry {member.filename!r} is not a regular file "
                                      "or directory")
            declared += member.file_size
        _check_declared(archive, declared, max_bytes)
        for member in members:
            name = _checked_name(archive, member.filename)
            if member.is_dir():
                yield name, True, None
            else:
                with bundle.open(member) as stream:
                    yield name, False, stream


def _tar_entries(archive: Path, max_bytes: int) -> Iterator[tuple[str, bool, IO[bytes] | None]]:
    try:
        bundle = tarfile.open(archive, mode="r:*")
    except tarfile.TarError as error:
        raise CheckpointError(f"{archive.name}: not a zip or tar archive ({error})") from error
    with bundle:
        members = bundle.getmembers()
        declared = 0
        for member in members:
            _checked_name(archive, member.name)
            if member.issym() or member.islnk():
                raise CheckpointError(f"{archive.name}: refused: entry {member.name!r} is a "
                                      f"{'symbolic' if member.issym() else 'hard'} link to {member.linkname!r}")
            if not (member.isfile() or member.isdir()):
                raise CheckpointError(f"{archive.name}: refused: entry {member.name!r} is a device, FIFO or other "
                                      "special file")
            declared += member.size
        _check_declared(archive, declared, max_bytes)
        for member in members:
            name = _checked_name(archive, member.name)
            if member.isdir():
                yield name, True, None
            else:
                stream = bundle.extractfile(member)
                assert stream is not None
                with stream:
                    yield name, False, stream


def _check_declared(archive: Path, declared: int, cap: int) -> None:
    if declared > cap:
        raise CheckpointError(f"{archive.name}: refused: its entries declare {declared:,} bytes, over the cap of "
                              f"{cap:,} (a zip bomb, or raise ALBERT_NER_MAX_EXTRACTED_BYTES)")


def max_extracted_bytes() -> int:
    """The cap on what one archive may unpack to: ``ALBERT_NER_MAX_EXTRACTED_BYTES``, default 4 GiB."""
    value = os.environ.get("ALBERT_NER_MAX_EXTRACTED_BYTES", "").strip()
    if not value:
        return DEFAULT_MAX_EXTRACTED_BYTES
    if not value.isdigit():
        raise CheckpointError(f"environment variable ALBERT_NER_MAX_EXTRACTED_BYTES={value!r}: expected a number "
                              "of bytes")
    return int(value)
