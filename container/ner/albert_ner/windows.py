"""Cutting sentences into model-sized windows, and putting per-window tags back together.

The encoder sees at most ``max_seq_length - 2`` characters at a time, but nothing a user gives is
truncated: a longer sentence is cut into consecutive windows (preferably after sentence punctuation, never
inside an entity when a cut outside one exists), each window is tagged, and the tags are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from albert_ner.sentences import Entity, Sentence

#: Cuts between windows go preferably right after one of these.
SENTENCE_PUNCTUATION = frozenset("。！？；，.!?;,")


@dataclass(frozen=True)
class Window:
    """A piece of a longer sentence; ``offset`` is where its first token sits in the sentence."""

    offset: int
    sentence: Sentence


def split_into_windows(sentence: Sentence, max_chars: int) -> list[Window]:
    """Cut a sentence into consecutive windows of at most ``max_chars`` tokens, covering it exactly.

    Each cut is the latest allowed boundary within ``max_chars`` of the window's start: preferably right
    after sentence punctuation (。！？；， and .!?;,), otherwise any boundary outside an entity; only when the
    whole stretch lies inside entities is an entity cut, and then it is clipped into both windows.
    Nothing is dropped: :func:`merge_window_tags` puts per-window predictions back together.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    tokens = sentence.tokens
    length = len(tokens)
    if length <= max_chars:
        return [Window(0, sentence)]
    inside_entity = bytearray(length + 1)  # inside_entity[b]: boundary b (before token b) cuts an entity
    for entity in sentence.entities:
        inside_entity[entity.start + 1 : entity.end] = b"\x01" * (entity.end - entity.start - 1)

    windows = []
    start = 0
    while length - start > max_chars:
        limit = start + max_chars
        fallback = None
        cut = limit
        for boundary in range(limit, start, -1):
            if inside_entity[boundary]:
                continue
            if tokens[boundary - 1] in SENTENCE_PUNCTUATION:
                cut = boundary
                break
            if fallback is None:
                fallback = boundary
        else:
            cut = limit if fallback is None else fallback
        windows.append(_window(sentence, start, cut))
        start = cut
    windows.append(_window(sentence, start, length))
    return windows


def _window(sentence: Sentence, start: int, end: int) -> Window:
    entities = tuple(
        Entity(max(e.start, start) - start, min(e.end, end) - start, e.type)
        for e in sentence.entities
        if e.start < end and e.end > start
    )
    return Window(start, Sentence(sentence.tokens[start:end], entities, sentence.source))


def merge_window_tags(windows: Sequence[Window], window_tags: Sequence[Sequence[str]]) -> list[str]:
    """One tag per token of the original sentence, from the tags predicted for each of its windows.

    Windows do not overlap, so this is a checked concatenation: the windows must be those of one sentence,
    in order, and each tag list as long as its window.
    """
    if len(windows) != len(window_tags):
        raise ValueError(f"{len(windows)} windows but {len(window_tags)} tag sequences")
    merged: list[str] = []
    for window, tags in zip(windows, window_tags, strict=True):
        if window.offset != len(merged):
            raise ValueError(
                f"window at offset {window.offset} does not follow the previous one (expected {len(merged)})"
            )
        if len(tags) != len(window.sentence.tokens):
            raise ValueError(
                f"window at offset {window.offset} has {len(window.sentence.tokens)} tokens but {len(tags)} tags"
            )
        merged.extend(tags)
    return merged


def window_features(features: np.ndarray, offset: int, window: Sentence) -> np.ndarray:
    """The rows of a sentence's lexicon features that belong to one of its windows."""
    return features[offset:offset + len(window.tokens)]
