"""What every reader shares: the read report and options, offset checks and overlap handling.

Labelling tools store entities as character offsets into a text. Three things go wrong with them in
practice, and each is handled here once for all formats:

- Offsets that do not point at the mention. Where a format repeats the mention's text (CLUENER, Label
  Studio, brat) every span is checked against it. Browser-based annotators count offsets in UTF-16 code
  units, so one emoji or other character outside the Basic Multilingual Plane shifts every later span by
  one; when the code-point reading fails the check and the UTF-16 reading passes, the error says so, and
  ``utf16_offsets=True`` converts such records instead (counted in the report).
- Overlapping entities, which no tag scheme can express. They fail naming both spans, unless
  ``overlapping_entities`` is ``"longest"`` or ``"first"``, which keeps one of each overlapping group
  (counted in the report).
- Parts of an export that are not entity spans (relations, cancelled annotations, unlabelled tasks).
  They are skipped and counted by kind, so the training log says what was left out.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from albert_ner.errors import DataError
from albert_ner.sentences import Entity, Sentence

OVERLAP_POLICIES = ("error", "longest", "first")
REPAIR_LOCATIONS_KEPT = 20


@dataclass(frozen=True)
class ReadOptions:
    """How to read input, from the job's hyperparameters (see hyperparameters.py for each one's meaning)."""

    scheme: str | None = None
    repair: bool = False
    label_attribute: str | None = None
    overlapping_entities: str = "error"
    utf16_offsets: bool = False

    def __post_init__(self) -> None:
        if self.overlapping_entities not in OVERLAP_POLICIES:
            raise ValueError(f"overlapping_entities={self.overlapping_entities!r}: expected one of "
                             f"{', '.join(OVERLAP_POLICIES)}")


@dataclass
class ReadReport:
    """What a reader found, for the training log."""

    files: list[str] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0
    repairs: int = 0  # entities whose tags were repaired (repair=True only)
    scheme: str = ""  # a tag scheme or a format name ("jsonl", "brat", ...), several joined by "+"
    repair_locations: list[str] = field(default_factory=list)  # "path:line" of the first repairs
    entities: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # what was left out, by kind
    overlaps_resolved: int = 0  # entities dropped by overlapping_entities=longest/first
    utf16_converted: int = 0  # records whose UTF-16 offsets were converted (utf16_offsets=True)

    def add(self, other: ReadReport) -> None:
        """Fold one file's report into a channel's."""
        self.files.extend(other.files)
        self.sentences += other.sentences
        self.tokens += other.tokens
        self.entities += other.entities
        self.repairs += other.repairs
        self.repair_locations.extend(other.repair_locations[: REPAIR_LOCATIONS_KEPT - len(self.repair_locations)])
        self.skipped.update(other.skipped)
        self.overlaps_resolved += other.overlaps_resolved
        self.utf16_converted += other.utf16_converted
        self.scheme = "+".join(sorted({*filter(None, self.scheme.split("+")), *other.scheme.split("+")}))

    def count(self, sentences: Sequence[Sentence]) -> None:
        self.sentences = len(sentences)
        self.tokens = sum(len(sentence.tokens) for sentence in sentences)
        self.entities = sum(len(sentence.entities) for sentence in sentences)

    def describe(self) -> str:
        """What was read, for the log: counts, files, formats and anything read in an unusual way."""
        notes = self.notes()
        return (f"{self.sentences} sentences with {self.entities} entities from {len(self.files)} file(s), "
                f"format {self.scheme}{f'; {notes}' if notes else ''}")

    def notes(self) -> str:
        """Everything read in an unusual way, as one clause for the log line ("" when nothing was)."""
        parts = [f"{self.repairs} entities repaired"] if self.repairs else []
        if self.overlaps_resolved:
            parts.append(f"{self.overlaps_resolved} overlapping entities dropped")
        if self.utf16_converted:
            parts.append(f"UTF-16 offsets converted in {self.utf16_converted} record(s)")
        parts += [f"{count} {kind} skipped" for kind, count in sorted(self.skipped.items())]
        return "; ".join(parts)


def require_content(text: str, path: str | os.PathLike[str]) -> None:
    """Fail on a file with nothing but whitespace: every format needs at least one record."""
    if not text.strip():
        raise DataError("empty file: no sentences", path)


def located(path: str | os.PathLike[str], line: int) -> str:
    return f"{os.fspath(path)}:{line}"


@dataclass(frozen=True)
class Mention:
    """An entity as a format gives it: code-point offsets, type, the repeated text if any, and its field."""

    start: int
    end: int  # exclusive
    type: str
    field: str  # where it sits in the record, e.g. "label.name.叶老桂[1]", for messages
    text: str | None = None  # the mention's own text, when the format repeats it
    line: int | None = None  # the line it is on, for formats whose records span lines (brat)
    score: float | None = None  # how sure its labeller was, where the format says (the project's JSON Lines)


def utf16_to_code_points(text: str) -> list[int]:
    """``table[u]`` is the code-point offset of UTF-16 offset ``u`` (-1 inside a surrogate pair)."""
    table: list[int] = []
    for index, char in enumerate(text):
        table.append(index)
        if ord(char) > 0xFFFF:
            table.append(-1)
    table.append(len(text))
    return table


def check_mentions(
    text: str,
    mentions: Sequence[Mention],
    options: ReadOptions,
    report: ReadReport,
    fail: Callable[[str], DataError],
    same: Callable[[str, str], bool] = str.__eq__,
) -> list[Mention]:
    """Check every mention's offsets against ``text`` (and its repeated text); return them in code points.

    ``same(mention_text, slice)`` decides whether a repeated text matches (brat writes line breaks inside
    a span as spaces). Offsets that fit only when read as UTF-16 code units are converted with
    ``utf16_offsets`` and named in the error without it.
    """
    problem = _first_mismatch(text, mentions, same)
    if problem is None:
        return list(mentions)
    table = utf16_to_code_points(text)
    converted: list[Mention] = []
    for mention in mentions:
        ends = [table[o] if 0 <= o < len(table) else -1 for o in (mention.start, mention.end)]
        if -1 in ends:
            converted = []
            break
        converted.append(Mention(ends[0], ends[1], mention.type, mention.field, mention.text, mention.line))
    verifiable = any(mention.text is not None for mention in mentions)
    if verifiable and converted and len(table) != len(text) + 1 and _first_mismatch(text, converted, same) is None:
        if options.utf16_offsets:
            report.utf16_converted += 1
            return converted
        raise fail(f"{problem}; the offsets fit when counted in UTF-16 code units (as browser-based annotators "
                   "count them; characters outside the Basic Multilingual Plane, such as emoji, count twice): set "
                   "the hyperparameter utf16_offsets=true to convert them")
    raise fail(problem)


def _first_mismatch(text: str, mentions: Sequence[Mention], same: Callable[[str, str], bool]) -> str | None:
    for mention in mentions:
        if not 0 <= mention.start < mention.end <= len(text):
            return (f"{mention.field} [{mention.start}, {mention.end}) is out of range: need 0 <= start < end <= "
                    f"{len(text)}, the length of the text")
        if mention.text is not None and not same(mention.text, text[mention.start:mention.end]):
            return (f"{mention.field} [{mention.start}, {mention.end}) is {text[mention.start:mention.end]!r} in the "
                    f"text, but the mention says {mention.text!r}")
    return None


def check_type(entity_type: object, field_name: str, fail: Callable[[str], DataError]) -> str:
    if not isinstance(entity_type, str) or not entity_type or entity_type != entity_type.strip():
        raise fail(f"{field_name}: the entity type {entity_type!r} must be a non-empty string without edge spaces")
    return entity_type


def check_offset(value: object, field_name: str, fail: Callable[[str], DataError]) -> int:
    if type(value) is not int:
        raise fail(f"{field_name}: offset {value!r} is not an integer")
    return value


def overlap_order(mention: Mention) -> tuple[int, int, str]:
    """The order in which overlaps are looked for: the first pair out of order is the one reported."""
    return mention.start, -mention.end, mention.type


def resolve_overlaps(
    mentions: Sequence[Mention], options: ReadOptions, report: ReadReport, fail: Callable[[str], DataError]
) -> tuple[Entity, ...]:
    """The mentions as sorted, non-overlapping entities, or an error naming two that overlap.

    ``longest`` keeps the longest of overlapping spans (the earlier on a tie), ``first`` the one that starts
    first (the longer on a tie); an exact duplicate (same span, same type) counts as an overlap too.
    """
    ordered = sorted(mentions, key=overlap_order)
    if options.overlapping_entities == "error":
        for previous, mention in zip(ordered, ordered[1:], strict=False):
            if mention.start < previous.end:
                raise fail(f"{mention.field} [{mention.start}, {mention.end}) {mention.type} overlaps {previous.field} "
                           f"[{previous.start}, {previous.end}) {previous.type}: no tag scheme can express nested or "
                           "overlapping entities; set the hyperparameter overlapping_entities=longest or first to keep "
                           "one of them")
        return tuple(Entity(m.start, m.end, m.type) for m in ordered)
    if options.overlapping_entities == "longest":
        ordered.sort(key=lambda m: (m.start - m.end, m.start, m.type))
    kept: list[Mention] = []
    for mention in ordered:
        if all(mention.end <= other.start or other.end <= mention.start for other in kept):
            kept.append(mention)
    report.overlaps_resolved += len(ordered) - len(kept)
    return tuple(sorted(Entity(m.start, m.end, m.type) for m in kept))


def sentence_from(
    text: str,
    mentions: Sequence[Mention],
    source: str,
    options: ReadOptions,
    report: ReadReport,
    fail: Callable[[str], DataError],
) -> Sentence:
    """The usual end of a reader: check offsets, resolve overlaps, make the sentence."""
    if not isinstance(text, str) or not text:
        raise fail(f"the text must be a non-empty string, found {text!r:.80}")
    checked = check_mentions(text, mentions, options, report, fail)
    return Sentence(tuple(text), resolve_overlaps(checked, options, report, fail), source)
