import itertools
import random

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from albert_ner.errors import DataError
from albert_ner.sentences import Entity
from albert_ner.tag_schemes import (
    SCHEME_PREFIXES,
    SCHEMES,
    LabelMap,
    TagSequenceError,
    detect_scheme,
    entities_to_tags,
    parse_tag,
    tags_to_entities,
)

TYPES = ["PER", "药物", "LOC-GPE"]


def random_entities(rng: random.Random, length: int) -> list[Entity]:
    entities, position = [], 0
    while position < length:
        position += rng.randint(0, 3)
        span = rng.randint(1, 5)
        if position + span > length:
            break
        entities.append(Entity(position, position + span, rng.choice(TYPES)))
        position += span
    return entities


@pytest.mark.parametrize(
    "tag, expected",
    [("O", ("O", "")), ("B-PER", ("B", "PER")), ("M-药物", ("M", "药物")), ("S-LOC-GPE", ("S", "LOC-GPE"))],
)
def test_parse_tag_splits_on_the_first_dash(tag, expected):
    assert parse_tag(tag) == expected


@pytest.mark.parametrize("tag", ["X-PER", "PER", "B-", "b-PER", "B_PER", "o", ""])
def test_parse_tag_rejects_tags_that_fit_no_scheme(tag):
    with pytest.raises(DataError, match="fits no tag scheme"):
        parse_tag(tag)


@pytest.mark.parametrize(
    "sequences, scheme",
    [
        ([["O", "O"]], "bio"),
        ([["B-PER", "I-PER"], ["O"]], "bio"),
        ([["B-PER", "E-PER"], ["S-药物"]], "bioes"),
        ([["B-PER", "I-PER", "E-PER"]], "bioes"),
        ([["S-LOC"], ["B-PER", "M-PER", "E-PER"]], "bmes"),
    ],
)
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) == scheme


def test_detect_scheme_rejects_m_with_i():
    with pytest.raises(DataError, match="mixed tag schemes"):
        detect_scheme([["B-PER", "M-PER", "E-PER"], ["B-LOC", "I-LOC"]])


@pytest.mark.parametrize(
    "tags, scheme, entities",
    [
        (["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"], "bio", [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]),
        (["S-药物", "B-PER", "I-PER", "E-PER", "O"], "bioes", [(0, 1, "药物"), (1, 4, "PER")]),
        (
            ["O", "B-LOC-GPE", "M-LOC-GPE", "M-LOC-GPE", "E-LOC-GPE", "S-PER"],
            "bmes",
            [(1, 5, "LOC-GPE"), (5, 6, "PER")],
        ),
    ],
)
def test_tags_to_entities_examples(tags, scheme, entities):
    assert tags_to_entities(tags, scheme) == (entities, 0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spans_and_tags_round_trip(scheme):
    rng = random.Random(1234)
    for _ in range(300):
        length = rng.randint(0, 30)
        entities = random_entities(rng, length)
        tags = entities_to_tags(length, entities, scheme)
        assert len(tags) == length
        assert {parse_tag(tag)[0] for tag in tags} <= {"O", *SCHEME_PREFIXES[scheme]}
        assert tags_to_entities(tags, scheme) == (entities, 0)


@pytest.mark.parametrize(
    "tags, scheme, index, message",
    [
        (["O", "I-PER"], "bio", 1, "'I-PER' has no opening 'B-PER'"),
        (["I-PER"], "bio", 0, "it is the first tag"),
        (["B-PER", "I-LOC"], "bio", 1, "type changes"),
        (["O", "M-PER", "E-PER"], "bmes", 1, "'M-PER' has no opening"),
        (["S-PER", "E-PER"], "bioes", 1, "'E-PER' has no opening"),
        (["B-PER", "I-PER", "O"], "bioes", 1, "'I-PER' ends an entity but is not 'E-PER' \\(next tag is 'O'\\)"),
        (["B-PER", "O"], "bmes", 0, "'B-PER' ends an entity but is not 'S-PER'"),
        (["O", "B-PER", "M-PER"], "bmes", 2, "the sentence ends"),
        (["B-PER", "B-LOC", "E-LOC"], "bioes", 0, "not 'S-PER'"),
        (["B-PER", "E-LOC"], "bioes", 1, "type changes"),
        (["O", "S-PER"], "bio", 1, "not part of the bio scheme"),
        (["B-PER", "I-PER", "E-PER"], "bmes", 1, "not part of the bmes scheme"),
        (["O", "Z-PER"], "bio", 1, "fits no tag scheme"),
    ],
)
def test_strict_parsing_names_the_offending_tag(tags, scheme, index, message):
    with pytest.raises(TagSequenceError, match=message) as caught:
        tags_to_entities(tags, scheme)
    assert caught.value.index == index


@pytest.mark.parametrize(
    "tags, scheme, entities, repairs",
    [
        (["O", "I-PER", "I-PER", "O"], "bio", [(1, 3, "PER")], 1),
        (["B-PER", "I-LOC"], "bio", [(0, 1, "PER"), (1, 2, "LOC")], 1),
        (["M-PER", "E-PER", "B-LOC", "E-LOC"], "bmes", [(0, 2, "PER"), (2, 4, "LOC")], 1),
        (["E-PER", "E-PER"], "bioes", [(0, 1, "PER"), (1, 2, "PER")], 2),
        (["B-PER", "I-PER", "O", "S-LOC"], "bioes", [(0, 2, "PER"), (3, 4, "LOC")], 1),
        (["B-PER", "I-LOC", "E-LOC"], "bioes", [(0, 1, "PER"), (1, 3, "LOC")], 2),
        (["B-PER", "M-PER"], "bmes", [(0, 2, "PER")], 1),
    ],
)
def test_repair_fixes_and_counts_broken_entities(tags, scheme, entities, repairs):
    assert tags_to_entities(tags, scheme, repair=True) == (entities, repairs)


def test_repair_still_rejects_foreign_prefixes():
    with pytest.raises(TagSequenceError, match="not part of the bio scheme"):
        tags_to_entities(["S-PER"], "bio", repair=True)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_repair_agrees_with_seqeval_on_random_tags(scheme):
    """seqeval's lenient chunker (conlleval's rules) is an independent reference for the repairs."""
    rng = random.Random(99)
    vocabulary = ["O"] + [f"{p}-{t}" for p in SCHEME_PREFIXES[scheme] for t in ("PER", "LOC")]
    for _ in range(2000):
        tags = [rng.choice(vocabulary) for _ in range(rng.randint(1, 8))]
        entities, repairs = tags_to_entities(tags, scheme, repair=True)
        reference = get_entities([tag.replace("M-", "I-") for tag in tags])
        assert [(t, s, e - 1) for s, e, t in entities] == reference, tags
        strict_ok = True
        try:
            tags_to_entities(tags, scheme)
        except TagSequenceError:
            strict_ok = False
        assert strict_ok == (repairs == 0), tags


def test_entities_to_tags_rejects_bad_spans():
    with pytest.raises(ValueError, match="does not fit"):
        entities_to_tags(3, [Entity(2, 4, "PER")], "bio")
    with pytest.raises(ValueError, match="overlaps"):
        entities_to_tags(5, [Entity(0, 3, "PER"), Entity(2, 4, "LOC")], "bioes")


def test_label_map_layout_and_round_trip():
    label_map = LabelMap(["药物", "PER", "PER"], scheme="bmes")
    assert label_map.entity_types == ["PER", "药物"]
    assert label_map.tags == ["O", "B-PER", "M-PER", "E-PER", "S-PER", "B-药物", "M-药物", "E-药物", "S-药物"]
    assert len(label_map) == 9
    assert label_map.tag_id("E-药物") == 7 and label_map.tag(7) == "E-药物"
    assert LabelMap.from_dict(label_map.to_dict()) == label_map
    assert LabelMap(["X"], "bio").tags == ["O", "B-X", "I-X"]
    with pytest.raises(KeyError, match="I-PER"):
        label_map.tag_id("I-PER")
    with pytest.raises(ValueError, match="do not match"):
        LabelMap.from_dict({**label_map.to_dict(), "tags": ["O", "B-PER"]})
    with pytest.raises(ValueError, match="unknown tag scheme"):
        LabelMap(["PER"], "iob1")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_allowed_transitions_accept_exactly_the_strictly_valid_sequences(scheme):
    label_map = LabelMap(["PER", "药物"], scheme)
    start, transitions, end = label_map.allowed_transitions()
    n = len(label_map)
    assert start.shape == (n,) and transitions.shape == (n, n) and end.shape == (n,)
    allowed_count = 0
    for length in range(1, 5):
        for ids in itertools.product(range(n), repeat=length):
            allowed = start[ids[0]] and end[ids[-1]] and all(transitions[a, b] for a, b in itertools.pairwise(ids))
            tags = [label_map.tag(i) for i in ids]
            try:
                entities, _ = tags_to_entities(tags, scheme)
                valid = entities_to_tags(length, entities, scheme) == tags
            except TagSequenceError:
                valid = False
            assert allowed == valid, tags
            allowed_count += allowed
    assert allowed_count > 0


def test_allowed_transitions_bio_examples():
    label_map = LabelMap(["LOC", "PER"], "bio")
    start, transitions, end = label_map.allowed_transitions()
    tag_id = label_map.tag_id
    assert not start[tag_id("I-PER")] and start[tag_id("B-PER")] and start[tag_id("O")]
    assert not transitions[tag_id("O"), tag_id("I-PER")]
    assert not transitions[tag_id("B-LOC"), tag_id("I-PER")]
    assert transitions[tag_id("B-PER"), tag_id("I-PER")] and transitions[tag_id("I-PER"), tag_id("B-PER")]
    assert end.all()


def test_continuations_mark_the_tags_that_carry_an_entity_on() -> None:
    bio = LabelMap(["LOC", "PER"], "bio")  # O B-LOC I-LOC B-PER I-PER
    continues = bio.continuations()
    assert [bio.tags[j] for j in np.flatnonzero(continues[bio.tag_id("B-LOC")])] == ["I-LOC"]
    assert [bio.tags[j] for j in np.flatnonzero(continues[bio.tag_id("I-PER")])] == ["I-PER"]
    assert not continues[bio.tag_id("O")].any()
    bmes = LabelMap(["PER"], "bmes")  # O B-PER M-PER E-PER S-PER
    continues = bmes.continuations()
    assert [bmes.tags[j] for j in np.flatnonzero(continues[bmes.tag_id("M-PER")])] == ["M-PER", "E-PER"]
    assert not continues[bmes.tag_id("E-PER")].any() and not continues[bmes.tag_id("S-PER")].any()
