"""brat standoff: a document ``NAME.txt`` and its annotations ``NAME.ann`` side by side.

Each ``.ann`` line is one annotation, its kind given by the first letter of its id. Text-bound
annotations, ``T1<TAB>TYPE START END<TAB>TEXT``, become entities (character offsets into the ``.txt``
file, end exclusive, the text repeated and checked; brat writes a line break inside a span as a space).
Discontinuous spans (``START END;START END``) cannot be tagged and fail naming the line. Relations (R),
events (E), attributes (A, M), normalisations (N), equivalences (*) and notes (#) are ignored and counted.

The document is cut into sentences for training at line breaks and after sentence-final punctuation
(。！？!?, and a full stop followed by a space), never inside an entity; blanks at a sentence's edges are
dropped, and every entity's offsets are moved into its sentence exactly.

brat's configuration files (``annotation.conf``, ``visual.conf``, ``tools.conf``), which corpora ship
beside the documents, are recognised by their sections and skipped.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from albert_ner.errors import DataError
from albert_ner.files import PathLike, read_text
from albert_ner.readers.spans import (
    Mention,
    ReadOptions,
    ReadReport,
    check_mentions,
    check_type,
    located,
    overlap_order,
    resolve_overlaps,
)
from albert_ner.sentences import Entity, Sentence

FORMAT = "brat"
_ANNOTATION_LINE = re.compile(r"[TREAMN*#][^\t]*\t")
#: A first line that can only be brat's (a CoNLL line "T\tO" cannot pass for one).
_FIRST_LINE = re.compile(r"T\d+\t\S+ \d+ \d+(;\d+ \d+)*(\t.*)?|R\d+\t\S+ \S+:\S+ \S+:\S+.*|E\d+\t\S+:\S+.*|"
                         r"[AM]\d+\t\S+ \S+.*|N\d+\t\S+ \S+ \S+.*|\*\t\S+ .*|#\d*\t.*")
_TEXT_BOUND = re.compile(r"(?P<type>[^\t ]+) (?P<spans>\d+ \d+(?:;\d+ \d+)*)(?:\t(?P<text>.*))?")
_KINDS = {"R": "relations", "E": "events", "A": "attributes", "M": "attributes", "N": "normalisations",
          "*": "equivalences", "#": "notes"}
_CONFIG_SECTIONS = re.compile(r"\[(entities|relations|events|attributes|spans|labels|drawing|options|search|"
                              r"annotators|disambiguators|normalization)\]")
_SENTENCE_END = re.compile(r"\n|[。！？!?][”’」』）)\"']*|\.(?=\s)")


def is_standoff(text: str) -> bool:
    """Whether the first non-blank line is a brat annotation (later lines are checked when read)."""
    first = next((line.rstrip("\r") for line in text.split("\n") if line.strip()), "")
    return bool(_FIRST_LINE.fullmatch(first))


def is_configuration(text: str) -> bool:
    """Whether the text is a brat configuration file: its first section is one brat defines."""
    for line in text.split("\n"):
        line = line.strip()
        if line and not line.startswith("#"):
            return bool(_CONFIG_SECTIONS.fullmatch(line))
    return False


def document_path(annotation_path: Path) -> Path:
    """The text an annotation file annotates: brat pairs them by name."""
    return annotation_path.with_suffix(".txt")


def read_document(annotation_path: PathLike, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    annotation_path = Path(annotation_path)
    text_path = document_path(annotation_path)
    if not text_path.is_file():
        raise DataError(f"brat annotations without their text: {text_path.name} is missing beside it", annotation_path)
    text = read_text(text_path)
    report = ReadReport(files=[str(text_path), str(annotation_path)], scheme=FORMAT)
    mentions = []
    for mention in _text_bound(read_text(annotation_path), annotation_path, report):
        def fail(message: str, line: int | None = mention.line) -> DataError:
            return DataError(message, annotation_path, line)

        mentions += check_mentions(text, [mention], options, report, fail, _same_text)

    def fail_overlap(message: str) -> DataError:
        """Name the .ann line of whichever of the two overlapping annotations comes later in the file."""
        ordered = sorted(mentions, key=overlap_order)
        pair = next((a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b.start < a.end)
        return DataError(message, annotation_path, max(m.line or 0 for m in pair))

    sentences = _split(text, resolve_overlaps(mentions, options, report, fail_overlap), text_path)
    report.count(sentences)
    return sentences, report


def _text_bound(annotations: str, path: Path, report: ReadReport) -> list[Mention]:
    mentions = []
    for number, line in enumerate(annotations.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if not _ANNOTATION_LINE.match(line):
            raise DataError(f"not a brat annotation line: {line[:80]!r}; expected an id (T1, R1, ...), a tab, "
                            "then the annotation", path, number)
        identifier, _, rest = line.partition("\t")
        if identifier[0] != "T":
            report.skipped[f"brat {_KINDS[identifier[0]]}"] += 1
            continue
        match = _TEXT_BOUND.fullmatch(rest)
        if match is None:
            raise DataError(f"{identifier}: expected 'TYPE START END<TAB>TEXT', found {rest[:80]!r}", path, number)
        if ";" in match["spans"]:
            raise DataError(f"{identifier}: discontinuous span {match['spans']!r} cannot be tagged as one entity; "
                            "join or split it in brat", path, number)
        start, end = (int(offset) for offset in match["spans"].split())
        entity_type = check_type(match["type"], identifier, partial(_error_at, path, number))
        mentions.append(Mention(start, end, entity_type, identifier, match["text"], number))
    return mentions


def _error_at(path: Path, line: int, message: str) -> DataError:
    return DataError(message, path, line)


def _same_text(mention: str, found: str) -> bool:
    return mention == found or mention == re.sub(r"\r?\n|\r", " ", found)


def _split(text: str, entities: tuple[Entity, ...], text_path: Path) -> list[Sentence]:
    inside = [False] * (len(text) + 1)  # inside[i]: offset i lies strictly within an entity
    for entity in entities:
        inside[entity.start + 1:entity.end] = [True] * (entity.end - entity.start - 1)
    starts = {entity.start for entity in entities}
    ends = {entity.end for entity in entities}
    cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(text) if not inside[m.end()]] + [len(text)]
    sentences = []
    remaining = iter(entities)  # sorted, and no entity crosses a cut
    current = next(remaining, None)
    line, counted = 1, 0
    for begin, finish in zip(cuts, cuts[1:], strict=False):
        while begin < finish and text[begin].isspace() and begin not in starts:
            begin += 1
        while finish > begin and text[finish - 1].isspace() and finish not in ends:
            finish -= 1
        own = []
        while current is not None and current.end <= finish:
            own.append(Entity(current.start - begin, current.end - begin, current.type))
            current = next(remaining, None)
        if begin >= finish:
            continue
        line += text.count("\n", counted, begin)
        counted = begin
        sentences.append(Sentence(tuple(text[begin:finish]), tuple(own), located(text_path, line)))
    return sentences
