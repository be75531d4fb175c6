"""Put an optional pretrained ALBERT checkpoint at /opt/pretrained while the image builds.

    python3 bake_pretrained.py SOURCE CONTEXT_DIR TARGET_DIR

SOURCE is empty (nothing to bake: TARGET_DIR is left empty), a directory relative to CONTEXT_DIR
(container/pretrained/ in the build context), or an http(s) URL of a zip such as the albert_zh
releases. The checkpoint directory is the one holding vocab.txt; a zip's single top folder is
unwrapped. Runs on the base image's own Python, standard library only.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path


def main(source: str, context_dir: Path, target_dir: Path) -> int:
    target_dir.mkdir(parents=True, exist_ok=True)
    source = source.strip()
    if not source:
        print("bake_pretrained: no PRETRAINED build argument: the image carries no checkpoint")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        if source.startswith(("http://", "https://")):
            archive = Path(scratch) / "checkpoint.zip"
            print(f"bake_pretrained: downloading {source}")
            with urllib.request.urlopen(source, timeout=600) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
            unpacked = Path(scratch) / "unpacked"
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(unpacked)
        else:
            unpacked = (context_dir / source).resolve()
            if not unpacked.is_dir():
                available = sorted(p.name for p in context_dir.iterdir() if p.is_dir())
                raise SystemExit(
                    f"bake_pretrained: PRETRAINED={source!r}: no such directory in container/pretrained/ "
                    f"(found: {', '.join(available) or 'nothing'}); put the checkpoint there or give a URL")
        checkpoint = _checkpoint_dir(unpacked, source)
        for entry in checkpoint.iterdir():
            destination = target_dir / entry.name
            if entry.is_dir():
                shutil.copytree(entry, destination)
            else:
                shutil.copy2(entry, destination)
    names = sorted(p.name for p in target_dir.iterdir())
    print(f"bake_pretrained: {target_dir} now holds {', '.join(names)}")
    return 0


def _checkpoint_dir(root: Path, source: str) -> Path:
    """The directory holding vocab.txt (albert_zh zips wrap the files in one folder, or not)."""
    candidates = sorted({path.parent for path in root.rglob("vocab.txt")}, key=lambda p: len(p.parts))
    if not candidates:
        raise SystemExit(f"bake_pretrained: PRETRAINED={source!r} holds no vocab.txt: not an ALBERT checkpoint")
    if not any(candidates[0].glob("*.index")):
        raise SystemExit(f"bake_pretrained: PRETRAINED={source!r}: {candidates[0]} has vocab.txt but no "
                         "checkpoint (*.index)")
    return candidates[0]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
