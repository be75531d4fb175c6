"""The checks every reader shares: offsets against the mention text (UTF-16 repair) and overlaps."""

import pytest

from albert_ner.errors import DataError
from albert_ner.readers.spans import (
    Mention,
    ReadOptions,
    ReadReport,
    check_mentions,
    resolve_overlaps,
    utf16_to_code_points,
)
from albert_ner.sentences import Entity


def fail(message):
    return DataError(message, "f.json", 7)


def test_utf16_table_maps_code_units_to_characters():
    assert utf16_to_code_points("a😀b") == [0, 1, -1, 2, 3]


def test_utf16_reading_is_used_only_when_it_alone_fits_and_only_on_request():
    text = "😀😀李鹏"
    utf16 = [Mention(4, 6, "PER", "m[0]", "李鹏")]
    report = ReadReport()
    assert check_mentions(text, utf16, ReadOptions(utf16_offsets=True), report, fail) == [
        Mention(2, 4, "PER", "m[0]", "李鹏")]
    assert report.utf16_converted == 1
    with pytest.raises(DataError, match=r"f.json:7: m\[0\] \[4, 6\) is out of range.*UTF-16 code units"):
        check_mentions(text, utf16, ReadOptions(), ReadReport(), fail)
    neither = [Mention(1, 3, "PER", "m[0]", "李鹏")]
    with pytest.raises(DataError, match=r"m\[0\] \[1, 3\) is '😀李' in the text, but the mention says '李鹏'$"):
        check_mentions(text, neither, ReadOptions(utf16_offsets=True), ReadReport(), fail)
    unchecked = [Mention(4, 6, "PER", "m[0]")]  # no mention text: nothing proves a UTF-16 reading
    with pytest.raises(DataError, match=r"out of range: need 0 <= start < end <= 4, the length of the text$"):
        check_mentions(text, unchecked, ReadOptions(utf16_offsets=True), ReadReport(), fail)


def test_overlap_policies():
    mentions = [Mention(0, 2, "A", "a"), Mention(1, 5, "B", "b"), Mention(4, 6, "C", "c"), Mention(0, 2, "A", "d")]
    with pytest.raises(DataError, match=r"d \[0, 2\) A overlaps a \[0, 2\) A"):
        resolve_overlaps(mentions, ReadOptions(), ReadReport(), fail)
    report = ReadReport()
    assert resolve_overlaps(mentions, ReadOptions(overlapping_entities="longest"), report, fail) == (
        Entity(1, 5, "B"),)
    assert report.overlaps_resolved == 3
    assert resolve_overlaps(mentions, ReadOptions(overlapping_entities="first"), ReadReport(), fail) == (
        Entity(0, 2, "A"), Entity(4, 6, "C"))
    assert "3 overlapping entities dropped" in report.notes()
