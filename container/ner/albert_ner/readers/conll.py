"""CoNLL columns: a token and its tag per line, blank lines between sentences, in BIO, BIOES or BMES.

The one format that carries tags rather than spans: its scheme is told from the tag prefixes a file uses
(or forced), broken tag sequences fail naming their line (or are repaired and counted, with ``repair``),
and :func:`to_conll` writes sentences back in any scheme.
"""

from __future__ import annotations

import os

from albert_ner.errors import DataError
from albert_ner.files import PathLike, read_text
from albert_ner.readers.spans import REPAIR_LOCATIONS_KEPT, ReadReport, require_content
from albert_ner.sentences import Sentence
from albert_ner.tag_schemes import (
    SCHEME_PREFIXES,
    SCHEMES,
    TagSequenceError,
    entities_to_tags,
    parse_tag,
    parse_tags,
    scheme_for_prefixes,
)


def read_conll(
    path: PathLike, scheme: str | None = None, repair: bool = False
) -> tuple[list[Sentence], ReadReport]:
    """Read a CoNLL-style file: a token and its tag per line, blank lines between sentences.

    Columns are separated by spaces or tabs; with more than two columns the first is the token and the last
    the tag (CoNLL-2003 layout). ``-DOCSTART-`` lines end a sentence and are otherwise ignored; CRLF line
    ends and a UTF-8 BOM are accepted. The scheme is detected from the file's tag prefixes unless forced,
    and one file must not mix schemes. See :func:`~albert_ner.tag_schemes.tags_to_entities` for
    ``repair``.
    """
    text = read_text(path)
    require_content(text, path)
    return parse_conll(text, path, scheme, repair)


def parse_conll(
    text: str, path: PathLike, scheme: str | None, repair: bool
) -> tuple[list[Sentence], ReadReport]:
    """:func:`read_conll` on text already read from ``path`` (which names it in errors)."""
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    raw_sentences: list[tuple[int, list[str], list[str]]] = []  # (first line, tokens, tags)
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    known_tags: set[str] = set()  # tags already checked
    first_seen: dict[str, tuple[int, str]] = {}  # prefix -> (line, tag) where it first appeared

    for line_number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            raise DataError("carriage return inside a line: the file seems to use CR-only line ends", path, line_number)
        # Tabs, when present, are the only separator, so that a token may be a space character.
        fields = [f for f in (line.split("\t") if "\t" in line else line.split(" ")) if f]
        if not fields or fields[0] == "-DOCSTART-" or (len(fields) == 1 and not fields[0].strip(" ")):
            if tokens:
                raw_sentences.append((first_line, tokens, tags))
                tokens, tags = [], []
            continue
        if len(fields) < 2:
            raise DataError(
                f"line has no tag: {line!r}; expected a token and its tag separated by a space or tab",
                path,
                line_number,
            )
        tag = fields[-1].strip(" ")
        if tag not in known_tags:
            _check_new_tag(tag, scheme, first_seen, path, line_number)
            known_tags.add(tag)
        if not tokens:
            first_line = line_number
        tokens.append(fields[0].strip(" ") or fields[0])
        tags.append(tag)
    if tokens:
        raw_sentences.append((first_line, tokens, tags))
    if not raw_sentences:
        raise DataError("no sentences: the file has only blank and -DOCSTART- lines", path)

    scheme = scheme or scheme_for_prefixes(first_seen)
    sentences = []
    report = ReadReport(files=[os.fspath(path)], scheme=scheme)
    for first_line, tokens, tags in raw_sentences:
        try:
            entities, repaired = parse_tags(tags, scheme, repair)
        except TagSequenceError as error:
            hint = "" if repair else "; reading with tag repair enabled would fix it"
            raise DataError(f"{error.reason}{hint}", path, first_line + error.index) from None
        sentences.append(Sentence(tuple(tokens), tuple(entities), f"{os.fspath(path)}:{first_line}"))
        report.repairs += len(repaired)
        for index in repaired[: REPAIR_LOCATIONS_KEPT - len(report.repair_locations)]:
            report.repair_locations.append(f"{os.fspath(path)}:{first_line + index}")
    report.count(sentences)
    return sentences, report


def _check_new_tag(
    tag: str, scheme: str | None, first_seen: dict[str, tuple[int, str]], path: PathLike, line_number: int
) -> None:
    """Validate a tag seen for the first time in a file, recording its prefix in ``first_seen``.

    Scheme conflicts are found here, at the first line that breaks the file's scheme, so the message can
    point at it and at the earlier tag it clashes with.
    """
    try:
        prefix = parse_tag(tag)[0]
    except DataError as error:
        raise DataError(error.reason, path, line_number) from None
    if prefix == "O" or prefix in first_seen:
        return
    if scheme is not None:
        if prefix not in SCHEME_PREFIXES[scheme]:
            raise DataError(
                f"tag {tag!r} is not part of the {scheme} scheme the file is read with, whose prefixes are "
                f"{', '.join(p + '-' for p in SCHEME_PREFIXES[scheme])}",
                path,
                line_number,
            )
    else:
        for other, (other_line, other_tag) in sorted(first_seen.items(), key=lambda item: item[1]):
            try:
                scheme_for_prefixes({other, prefix})
            except DataError as error:
                raise DataError(
                    f"{error.reason}: {tag!r} here, {other_tag!r} at line {other_line}; a file must use one "
                    "of BIO (B/I), BIOES (B/I/E/S) or BMES (B/M/E/S)",
                    path,
                    line_number,
                ) from None
    first_seen[prefix] = (line_number, tag)


def to_conll(sentence: Sentence, scheme: str) -> str:
    """One sentence as CoNLL lines (``token<TAB>tag``) and the blank line after it, tagged in ``scheme``.

    Whitespace tokens are written as one space (the tab keeps it a token): a line break cannot sit inside
    a CoNLL line, and the tokenizer reads every kind of whitespace as the same token anyway.
    """
    tags = entities_to_tags(len(sentence.tokens), sentence.entities, scheme)
    return "".join(f"{' ' if token.isspace() else token}\t{tag}\n"
                   for token, tag in zip(sentence.tokens, tags, strict=True)) + "\n"
