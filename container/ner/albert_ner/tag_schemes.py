"""Tag schemes (BIO, BIOES, BMES) and the conversion between per-token tags and entity spans.

Everything between the readers and the model's output works on entity spans, which are the same whatever
scheme a corpus was written in. A scheme matters only at the edges: parsing a CoNLL file and choosing the
tags the model emits. Tags are ``PREFIX-TYPE``; the type is whatever the data says (``PER``, ``药物``,
``PER-NAME``: the tag is split on its first ``-``), so nothing here knows any particular entity type.

``bio`` is IOB2 (every entity starts with ``B-``); ``bioes`` marks entity ends (``E-``) and one-token
entities (``S-``); ``bmes`` is BIOES with ``M-`` for inside tokens, as the MSRA corpus writes it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from albert_ner.errors import DataError
from albert_ner.sentences import Entity

SCHEMES = ("bio", "bioes", "bmes")
SCHEME_PREFIXES = {"bio": ("B", "I"), "bioes": ("B", "I", "E", "S"), "bmes": ("B", "M", "E", "S")}
_INSIDE_PREFIX = {"bio": "I", "bioes": "I", "bmes": "M"}
_ALL_PREFIXES = frozenset("BIMES")
_OUTSIDE = ("O", "")


class TagSequenceError(DataError):
    """A tag sequence that breaks its scheme; ``index`` is the offending tag, so readers can name its line."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


@lru_cache(maxsize=4096)
def parse_tag(tag: str) -> tuple[str, str]:
    """Split a tag into (prefix, entity type); ``"O"`` gives ``("O", "")``.

    Raises DataError for anything that fits no scheme, so that a typo is caught where it is read rather
    than silently becoming an entity type.
    """
    if tag == "O":
        return _OUTSIDE
    prefix, dash, entity_type = tag.partition("-")
    if not dash or prefix not in _ALL_PREFIXES or not entity_type:
        raise DataError(
            f"tag {tag!r} fits no tag scheme: expected 'O' or one of B-, I-, M-, E-, S- followed by an "
            "entity type, e.g. 'B-PER'"
        )
    return prefix, entity_type


def scheme_for_prefixes(prefixes: Collection[str]) -> str:
    """The scheme a file's tag prefixes were written in.

    Any ``M-`` means BMES, any ``E-``/``S-`` without ``M-`` means BIOES, and only ``B-``/``I-`` (or only
    ``O``) means BIO. ``M-`` together with ``I-`` cannot be one scheme and raises DataError. A BMES file
    whose entities are all one or two tokens long has no ``M-`` and reads as BIOES, which gives the same
    spans.
    """
    if "M" in prefixes and "I" in prefixes:
        raise DataError("mixed tag schemes: BMES 'M-' tags together with BIO/BIOES 'I-' tags")
    if "M" in prefixes:
        return "bmes"
    if "E" in prefixes or "S" in prefixes:
        return "bioes"
    return "bio"


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """The scheme of a corpus given as tag sequences; see :func:`scheme_for_prefixes`."""
    distinct: set[str] = set()
    for tags in tag_sequences:
        distinct.update(tags)
    return scheme_for_prefixes({parse_tag(tag)[0] for tag in distinct})


def tags_to_entities(tags: Sequence[str], scheme: str, repair: bool = False) -> tuple[list[Entity], int]:
    """Parse a tag sequence into entities; return them with the number of entities that needed repair.

    Strict by default: an inside or end tag with no opening tag, a type change inside an entity, or (in
    BIOES/BMES) an entity that is not closed by ``E-``/``S-`` raises TagSequenceError at the offending tag,
    because a corpus with such tags usually has a conversion bug the user wants to know about. With
    ``repair=True`` they are fixed the way conlleval and seqeval read them: an orphan inside/end tag starts a
    new entity, and an unclosed entity ends at its last inside tag. The count is the number of entities in
    the result whose tags had to be repaired. A prefix that is not part of ``scheme`` always raises.
    """
    entities, repaired = parse_tags(tags, scheme, repair)
    return entities, len(repaired)


def parse_tags(tags: Sequence[str], scheme: str, repair: bool = False) -> tuple[list[Entity], list[int]]:
    """:func:`tags_to_entities`, returning the start index of each repaired entity instead of a count."""
    _check_scheme(scheme)
    allowed = SCHEME_PREFIXES[scheme]
    explicit_end = scheme != "bio"
    entities: list[Entity] = []
    repaired: list[int] = []
    start = -1  # start of the open entity, -1 when none is open
    open_type = ""
    broken = False

    def close(end: int) -> None:
        nonlocal start
        entities.append(Entity(start, end, open_type))
        if broken:
            repaired.append(start)
        start = -1

    def close_unterminated(last: int) -> None:
        """The open entity ends at ``last`` without an end tag: an error in BIOES/BMES, fine in BIO."""
        nonlocal broken
        if explicit_end:
            if not repair:
                following = f"next tag is {tags[last + 1]!r}" if last + 1 < len(tags) else "the sentence ends"
                expected = f"E-{open_type}" if last > start else f"S-{open_type}"
                raise TagSequenceError(
                    f"{tags[last]!r} ends an entity but is not {expected!r} ({following})", last
                )
            broken = True
        close(last + 1)

    for index, tag in enumerate(tags):
        if tag == "O":
            if start >= 0:
                close_unterminated(index - 1)
            continue
        try:
            prefix, entity_type = parse_tag(tag)
        except DataError as error:
            raise TagSequenceError(error.reason, index) from None
        if prefix not in allowed:
            raise TagSequenceError(
                f"tag {tag!r} is not part of the {scheme} scheme, whose prefixes are "
                f"{', '.join(p + '-' for p in allowed)}",
                index,
            )
        if prefix == "B" or prefix == "S":
            if start >= 0:
                close_unterminated(index - 1)
            if prefix == "S":
                entities.append(Entity(index, index + 1, entity_type))
            else:
                start, open_type, broken = index, entity_type, False
            continue
        # An inside or end tag: it must continue an open entity of its own type.
        if start < 0 or open_type != entity_type:
            if not repair:
                if start < 0:
                    previous = f"previous tag is {tags[index - 1]!r}" if index else "it is the first tag"
                    raise TagSequenceError(f"{tag!r} has no opening 'B-{entity_type}' ({previous})", index)
                raise TagSequenceError(
                    f"{tag!r} follows {tags[index - 1]!r}: the type changes inside an entity", index
                )
            if start >= 0:
                close_unterminated(index - 1)
            start, open_type, broken = index, entity_type, True
        if prefix == "E":
            close(index + 1)
    if start >= 0:
        close_unterminated(len(tags) - 1)
    return entities, repaired


def entities_to_tags(length: int, entities: Sequence[Entity], scheme: str) -> list[str]:
    """The tag sequence of ``length`` tokens that marks ``entities`` in ``scheme``.

    Entities must lie within the sequence and must not overlap (no scheme can express nesting); a
    violation raises ValueError naming the entity, since the readers have already rejected such input.
    """
    _check_scheme(scheme)
    inside = _INSIDE_PREFIX[scheme]
    tags = ["O"] * length
    previous_end = 0
    previous: Entity | None = None
    for entity in sorted(entities):
        start, end, entity_type = entity
        if not 0 <= start < end <= length:
            raise ValueError(f"entity {tuple(entity)} does not fit a sequence of {length} tokens")
        if start < previous_end:
            raise ValueError(f"entity {tuple(entity)} overlaps {previous and tuple(previous)}")
        if scheme != "bio" and end - start == 1:
            tags[start] = f"S-{entity_type}"
        else:
            tags[start] = f"B-{entity_type}"
            tags[start + 1 : end] = [f"{inside}-{entity_type}"] * (end - start - 1)
            if scheme != "bio":
                tags[end - 1] = f"E-{entity_type}"
        previous_end, previous = end, entity
    return tags


def _may_follow(previous: tuple[str, str], current: tuple[str, str], scheme: str) -> bool:
    """Whether tag ``current`` may directly follow ``previous``; sentence edges count as ``O``."""
    previous_prefix, previous_type = previous
    prefix, entity_type = current
    inside = _INSIDE_PREFIX[scheme]
    if scheme == "bio":
        return prefix != "I" or (previous_prefix in ("B", "I") and previous_type == entity_type)
    if previous_prefix in ("B", inside):
        return prefix in (inside, "E") and previous_type == entity_type
    return prefix in ("O", "B", "S")


class LabelMap:
    """The model's tag vocabulary: ``O`` (id 0), then every prefix of ``scheme`` for each sorted type.

    The order is fixed by the types and the scheme alone, so a label map saved with a model and one
    rebuilt from the same training data agree id for id.
    """

    def __init__(self, entity_types: Sequence[str], scheme: str = "bioes"):
        _check_scheme(scheme)
        for entity_type in entity_types:
            if not isinstance(entity_type, str) or not entity_type or entity_type != entity_type.strip():
                raise ValueError(f"entity type {entity_type!r} must be a non-empty string without edge spaces")
        self.scheme = scheme
        self.entity_types = sorted(set(entity_types))
        self.tags = ["O"] + [f"{p}-{t}" for t in self.entity_types for p in SCHEME_PREFIXES[scheme]]
        self._ids = {tag: index for index, tag in enumerate(self.tags)}

    def __len__(self) -> int:
        return len(self.tags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"LabelMap({self.entity_types!r}, scheme={self.scheme!r})"

    def tag_id(self, tag: str) -> int:
        try:
            return self._ids[tag]
        except KeyError:
            raise KeyError(f"tag {tag!r} is not in the label map {self.tags}") from None

    def tag(self, tag_id: int) -> str:
        return self.tags[tag_id]

    def allowed_transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(start_allowed [N], transition_allowed [N, N] from->to, end_allowed [N])`` boolean masks.

        The CRF uses these so that decoding can only produce sequences that parse strictly: a sequence is
        allowed exactly when :func:`tags_to_entities` accepts it without repair.
        """
        parsed = [parse_tag(tag) for tag in self.tags]
        start = np.array([_may_follow(_OUTSIDE, tag, self.scheme) for tag in parsed], dtype=bool)
        end = np.array([_may_follow(tag, _OUTSIDE, self.scheme) for tag in parsed], dtype=bool)
        transitions = np.array(
            [[_may_follow(previous, tag, self.scheme) for tag in parsed] for previous in parsed], dtype=bool
        )
        return start, transitions, end

    def continuations(self) -> np.ndarray:
        """``[N, N]`` bool: tag ``j`` right after tag ``i`` carries ``i``'s entity on (an inside or end tag
        of the same type after an opening or inside tag), the way :func:`tags_to_entities` reads them.

        An entity's confidence is the probability of its tags *and* of the next tag not continuing it.
        """
        parsed = [parse_tag(tag) for tag in self.tags]
        inside = _INSIDE_PREFIX[self.scheme]
        return np.array([[previous_prefix in ("B", inside) and prefix in (inside, "E") and previous_type == entity_type
                          for prefix, entity_type in parsed] for previous_prefix, previous_type in parsed], dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "entity_types": list(self.entity_types), "tags": list(self.tags)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelMap:
        """Rebuild a saved label map, refusing one whose tags are not what its scheme and types give."""
        label_map = cls(data["entity_types"], data["scheme"])
        if "tags" in data and list(data["tags"]) != label_map.tags:
            raise ValueError(
                f"label map tags {list(data['tags'])} do not match scheme {data['scheme']!r} and entity types "
                f"{label_map.entity_types}, which give {label_map.tags}"
            )
        return label_map
