"""Jiagu's entity labels of a text file, written as a `teacher` channel file (this project's JSON Lines).

Jiagu (a fixed model on PyPI) stands in for whatever system a team plugs in as the teacher: the channel
does not know which one wrote it. The output is data, generated here and not committed::

    python -m venv .venv-jiagu && .venv-jiagu/bin/pip install jiagu==0.2.3 numpy
    .venv-jiagu/bin/python bench/jiagu_teacher.py --input unlabelled.txt --output teacher.jsonl

One sentence per input line. Jiagu's tagger is word-level: the sentence is cut by ``jiagu.seg`` and
``jiagu.ner`` gives each word a BIO tag over PER, LOC and ORG (fed single characters, it marks only the
first character of a name). Each word's tag is spread over its characters (B- on the first, I- on the
rest), and the tags become spans by the job's own BIO reading (an I- with no B- opens an entity, as
``repair_tags`` does). Words are found in the text in order, so characters the segmenter drops (spaces)
stay outside any entity.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))

from albert_ner.tag_schemes import tags_to_entities  # noqa: E402


def character_tags(text: str, words: list[str], word_tags: list[str]) -> list[str]:
    """Word-level BIO tags spread over the characters of ``text``."""
    tags, position = ["O"] * len(text), 0
    for word, tag in zip(words, word_tags, strict=True):
        start = text.find(word, position)
        if start < 0:
            raise ValueError(f"Jiagu's word {word!r} is not in the text after position {position}: {text!r}")
        if tag != "O":
            kind, _, entity_type = tag.partition("-")
            tags[start:start + len(word)] = [f"{kind}-{entity_type}"] + [f"I-{entity_type}"] * (len(word) - 1)
        position = start + len(word)
    return tags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="text, one sentence per line")
    parser.add_argument("--output", required=True, type=Path, help="the teacher channel file to write (JSON Lines)")
    args = parser.parse_args()
    try:
        import jiagu
    except ImportError:
        raise SystemExit("Jiagu is not installed: pip install jiagu==0.2.3 numpy (see the docstring)") from None
    started, sentences, entities, repaired = time.monotonic(), 0, 0, 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    with open(args.input, encoding="utf-8") as source, open(partial, "w", encoding="utf-8") as output:
        for line in source:
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            words = jiagu.seg(text)
            found, repairs = tags_to_entities(character_tags(text, words, jiagu.ner(words)), "bio", repair=True)
            output.write(json.dumps({"text": text, "entities": [list(entity) for entity in found]},
                                    ensure_ascii=False) + "\n")
            sentences, entities, repaired = sentences + 1, entities + len(found), repaired + repairs
    partial.replace(args.output)
    print(f"jiagu {getattr(jiagu, '__version__', '?')}: {sentences:,} sentences, {entities:,} entities "
          f"({repaired} opened by an I- tag) in {time.monotonic() - started:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
