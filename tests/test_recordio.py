"""Pipe mode: RecordIO framing as SageMaker writes it, read from a real FIFO."""

import json
import os
import struct
import threading

import pytest

from albert_ner.data import read_channel
from albert_ner.errors import DataError
from albert_ner.readers.recordio import MAGIC, frame, records
from albert_ner.sentences import Entity, Sentence
from format_writers import ground_truth_line
from readers_helpers import content

SENTENCES = [Sentence(tuple("李鹏在北京"), (Entity(0, 2, "PER"), Entity(3, 5, "LOC"))), Sentence(tuple("今天"), ())]


def serve_fifo(path, data: bytes) -> threading.Thread:
    """Play SageMaker: write the stream into the channel's FIFO once a reader opens it."""
    os.mkfifo(path)

    def write() -> None:
        with open(path, "wb") as pipe:
            pipe.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_framing_is_magic_length_payload_and_padding_to_four_bytes():
    assert frame(b"abcde") == struct.pack("<II", 0xCED7230A, 5) + b"abcde\0\0\0"
    assert frame(b"abcd") == struct.pack("<II", MAGIC, 4) + b"abcd"
    assert list(records(frame(b"") + frame("好".encode()) + frame(b"xyz"), "p")) == [b"", "好".encode(), b"xyz"]


def test_multi_part_records_are_joined_with_the_magic_number():
    magic = struct.pack("<I", MAGIC)
    parts = [(1, b"ab"), (2, b"cdef"), (3, b"g")]
    data = b"".join(magic + struct.pack("<I", flag << 29 | len(p)) + p + b"\0" * (-len(p) % 4) for flag, p in parts)
    assert list(records(data + frame(b"next"), "p")) == [b"ab" + magic + b"cdef" + magic + b"g", b"next"]


@pytest.mark.parametrize("data, message", [
    (frame(b"abc")[:-2], r"RecordIO record 1: 3 bytes announced, 2 left"),
    (frame(b"abcd") + b"\x0a\x23", "RecordIO record 2: the stream ends inside a record header"),
    (frame(b"abcd") + struct.pack("<II", 0x12345678, 0), r"RecordIO record 2 \(byte 12\): magic number 0x12345678"),
    (struct.pack("<II", MAGIC, 1 << 29 | 4) + b"abcd", "ends inside a multi-part record"),
])
def test_broken_streams_name_the_record(data, message):
    with pytest.raises(DataError, match=message):
        list(records(data, "p"))


def test_augmented_manifest_from_a_fifo_reads_like_the_manifest_file(tmp_path):
    stream = b"".join(frame(part.encode()) for sentence in SENTENCES for part in (
        "".join(sentence.tokens), json.dumps(ground_truth_line(sentence, "my-job")["my-job"], ensure_ascii=False),
        json.dumps(ground_truth_line(sentence, "my-job")["my-job-metadata"])))
    writer = serve_fifo(tmp_path / "training_0", stream)
    sentences, report = read_channel(tmp_path / "training_0", label_attribute="my-job")
    writer.join(timeout=5)
    assert content(sentences) == content(SENTENCES)
    assert sentences[1].source == f"{tmp_path / 'training_0'}:2"  # the manifest's line
    assert report.scheme == "ground-truth"


def test_wrapped_files_and_an_unframed_stream_are_read_by_content(tmp_path):
    conll = "李 B-PER\n鹏 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n"
    doccano = json.dumps({"text": "今天", "label": []}) + "\n"
    writer = serve_fifo(tmp_path / "a_0", frame(conll.encode()) + frame(doccano.encode()))
    sentences, report = read_channel(tmp_path / "a_0")
    writer.join(timeout=5)
    assert content(sentences) == content(SENTENCES) and report.scheme == "bio+doccano"
    writer = serve_fifo(tmp_path / "b_0", conll.encode())
    assert content(read_channel(tmp_path / "b_0")[0]) == content(SENTENCES[:1])


def test_label_before_source_is_an_error(tmp_path):
    label = json.dumps(ground_truth_line(SENTENCES[0])["ner-job"])
    writer = serve_fifo(tmp_path / "c_0", frame(label.encode()))
    with pytest.raises(DataError, match=r"RecordIO record 1: a label attribute before any source text"):
        read_channel(tmp_path / "c_0")
    writer.join(timeout=5)
