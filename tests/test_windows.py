"""Windows: every sentence is covered exactly, cuts prefer punctuation and avoid entities, tags merge back."""

import itertools
import random

import pytest

from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import SCHEMES, entities_to_tags, tags_to_entities
from albert_ner.windows import SENTENCE_PUNCTUATION, Window, merge_window_tags, split_into_windows


def check_windows(sentence, windows, max_chars):
    """Windows cover the sentence in order without overlap, respect the size, and keep every entity piece."""
    assert all(isinstance(w, Window) for w in windows)
    lengths = [len(w.sentence.tokens) for w in windows]
    assert [w.offset for w in windows] == [sum(lengths[:i]) for i in range(len(windows))]
    assert sum((w.sentence.tokens for w in windows), ()) == sentence.tokens
    assert all(1 <= len(w.sentence.tokens) <= max_chars for w in windows)
    covered = sorted(
        (e.start + w.offset, e.end + w.offset, e.type) for w in windows for e in w.sentence.entities
    )
    for entity in sentence.entities:
        pieces = [c for c in covered if entity.start <= c[0] and c[1] <= entity.end]
        assert pieces[0][0] == entity.start and pieces[-1][1] == entity.end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
        assert all(c[2] == entity.type for c in pieces)


def make(text, entities=()):
    return Sentence(tuple(text), tuple(Entity(*e) for e in entities), "test:1")


def test_short_sentence_is_one_window():
    sentence = make("你好", [(0, 1, "X")])
    assert split_into_windows(sentence, 2) == [Window(0, sentence)]


def test_cuts_after_the_latest_punctuation():
    sentence = make("一二，三四。五六七八九十")
    windows = split_into_windows(sentence, 8)
    assert ["".join(w.sentence.tokens) for w in windows] == ["一二，三四。", "五六七八九十"]
    sentence = make("ab. cd, efghijkl")
    assert ["".join(w.sentence.tokens) for w in split_into_windows(sentence, 10)] == ["ab. cd,", " efghijkl"]


def test_cut_avoids_entities_even_over_punctuation():
    # The only punctuation inside reach lies within an entity; the latest free boundary wins.
    sentence = make("甲乙丙丁，戊己庚辛壬", [(3, 8, "ORG")])
    windows = split_into_windows(sentence, 7)
    assert [w.offset for w in windows] == [0, 3]
    assert windows[1].sentence.entities == (Entity(0, 5, "ORG"),)
    check_windows(sentence, windows, 7)


def test_entity_longer_than_a_window_is_clipped_into_both():
    sentence = make("一二三四五六七八", [(1, 8, "LOC")])
    windows = split_into_windows(sentence, 3)
    assert [w.offset for w in windows] == [0, 1, 4, 7]
    pieces = [(), (Entity(0, 3, "LOC"),), (Entity(0, 3, "LOC"),), (Entity(0, 1, "LOC"),)]
    assert [w.sentence.entities for w in windows] == pieces
    check_windows(sentence, windows, 3)


def test_random_windows_cover_keep_entities_and_merge_back():
    rng = random.Random(7)
    alphabet = "甲乙丙丁戊己庚辛" + "".join(SENTENCE_PUNCTUATION)
    forced_cuts = punctuation_cuts = 0
    for _ in range(300):
        length = rng.randint(1, 80)
        entities, position = [], 0
        while True:
            position += rng.randint(0, 6)
            span = rng.randint(1, 7)
            if position + span > length:
                break
            entities.append((position, position + span, rng.choice(["PER", "药物"])))
            position += span
        sentence = make([rng.choice(alphabet) for _ in range(length)], entities)
        max_chars = rng.randint(1, 20)
        windows = split_into_windows(sentence, max_chars)
        check_windows(sentence, windows, max_chars)
        for window, next_window in itertools.pairwise(windows):
            cut, reach = next_window.offset, range(window.offset + 1, window.offset + max_chars + 1)
            free = [b for b in reach if not any(e.start < b < e.end for e in sentence.entities)]
            if any(e.start < cut < e.end for e in sentence.entities):
                forced_cuts += 1
                assert not free and cut == reach[-1]  # an entity is cut only when no boundary in reach is free
            else:
                punctuated = [b for b in free if sentence.tokens[b - 1] in SENTENCE_PUNCTUATION]
                punctuation_cuts += bool(punctuated)
                assert cut == max(punctuated or free)
        # Per-window tags (as a model would predict them) merge back into one valid tag per token.
        scheme = SCHEMES[rng.randrange(3)]
        window_tags = [entities_to_tags(len(w.sentence.tokens), w.sentence.entities, scheme) for w in windows]
        merged = merge_window_tags(windows, window_tags)
        merged_entities, _ = tags_to_entities(merged, scheme)
        if not any(e.start < w.offset < e.end for w in windows for e in sentence.entities):
            assert merged == entities_to_tags(length, sentence.entities, scheme)
            assert merged_entities == list(sentence.entities)
    assert forced_cuts > 10 and punctuation_cuts > 10


def test_merge_window_tags_checks_its_input():
    windows = split_into_windows(make("一二三。四五"), 4)
    assert merge_window_tags(windows, [["O"] * 4, ["B-X", "I-X"]]) == ["O"] * 4 + ["B-X", "I-X"]
    with pytest.raises(ValueError, match="has 2 tokens but 3 tags"):
        merge_window_tags(windows, [["O"] * 4, ["O"] * 3])
    with pytest.raises(ValueError, match="does not follow"):
        merge_window_tags(windows[::-1], [["O"] * 2, ["O"] * 4])
    with pytest.raises(ValueError, match="2 windows but 1 tag sequences"):
        merge_window_tags(windows, [["O"] * 4])
    with pytest.raises(ValueError, match="at least 1"):
        split_into_windows(make("一"), 0)
