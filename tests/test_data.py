import json
import re

import pytest

from albert_ner.data import read_channel, read_data_file, read_jsonl
from albert_ner.errors import DataError
from albert_ner.readers.conll import read_conll
from albert_ner.sentences import Entity, Sentence


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def raises_at(path, line, match):
    """The error must name the file and line, and say what is wrong."""
    return pytest.raises(DataError, match=re.escape(f"{path}:{line}: ") + ".*" + match)


# --- CoNLL ---------------------------------------------------------------------------------------------------

MSRA_LIKE = (
    "中 B-ORG\r\n共 M-ORG\r\n中 M-ORG\r\n央 E-ORG\r\n致 O\r\n电 O\r\n\r\n"
    "李 B-PER\r\n鹏 E-PER\r\n在 O\r\n京 S-LOC\r\n\r\n"
)


def test_reads_msra_style_crlf_bmes(tmp_path):
    path = write(tmp_path / "msra.txt", MSRA_LIKE)
    sentences, report = read_conll(path)
    assert [s.tokens for s in sentences] == [tuple("中共中央致电"), tuple("李鹏在京")]
    assert sentences[0].entities == (Entity(0, 4, "ORG"),)
    assert sentences[1].entities == (Entity(0, 2, "PER"), Entity(3, 4, "LOC"))
    assert sentences[1].source == f"{path}:8"
    assert (report.scheme, report.sentences, report.tokens, report.repairs) == ("bmes", 2, 10, 0)
    assert report.files == [str(path)]


def test_bom_tabs_docstart_and_chinese_types(tmp_path):
    text = (
        "\ufeff-DOCSTART-\tO\n\n"
        "阿\tB-药物\n司\tI-药物\n匹\tI-药物\n林\tI-药物\n好\tO\n"
        "-DOCSTART- -X- O O\n好\tO\n"
    )
    sentences, report = read_conll(write(tmp_path / "a.conll", text))
    assert report.scheme == "bio"
    assert [s.tokens for s in sentences] == [tuple("阿司匹林好"), ("好",)]
    assert sentences[0].entities == (Entity(0, 4, "药物"),)


def test_space_token_with_tab_separator_and_multi_column_lines(tmp_path):
    text = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n \tO\nA\tB-X-Y\n"
    sentences, report = read_conll(write(tmp_path / "c.txt", text))
    assert sentences[0].tokens == ("EU", "rejects") and sentences[0].entities == (Entity(0, 1, "ORG"),)
    assert sentences[1].tokens == (" ", "A") and sentences[1].entities == (Entity(1, 2, "X-Y"),)
    assert report.scheme == "bio"


def test_forced_scheme(tmp_path):
    path = write(tmp_path / "x.txt", "甲 B-PER\n乙 I-PER\n\n")
    assert read_conll(path, scheme="bio")[0][0].entities == (Entity(0, 2, "PER"),)
    with raises_at(path, 2, "'I-PER' ends an entity but is not 'E-PER'"):
        read_conll(path, scheme="bioes")
    with raises_at(path, 2, "'I-PER' is not part of the bmes scheme"):
        read_conll(path, scheme="bmes")


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("甲 O\n乙\n", 2, "line has no tag: '乙'"),
        ("甲 O\n\n乙 Q-PER\n", 3, "'Q-PER' fits no tag scheme"),
        ("甲 B-PER\n乙 M-PER\n丙 E-PER\n\n丁 B-LOC\n戊 I-LOC\n", 6, "mixed tag schemes.*'M-PER' at line 2"),
        ("甲 O\n乙 O\n\n丙 O\n丁 I-PER\n", 5, "'I-PER' has no opening 'B-PER'.*tag repair"),
        ("甲 O\n\n乙 B-PER\n丙 M-PER\n丁 O\n", 4, "'M-PER' ends an entity but is not 'E-PER'"),
        ("甲 O\r乙 O\n", 1, "carriage return"),
    ],
)
def test_conll_errors_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.txt", text)
    with raises_at(path, line, message):
        read_conll(path)


def test_non_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("甲 O\n".encode() + "乙 O\n".encode("gbk"))
    with raises_at(path, 2, "not UTF-8: byte 0xd2 at byte offset 6"):
        read_conll(path)


@pytest.mark.parametrize("text", ["", "\n\r\n  \n", "\ufeff"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(DataError, match=re.escape(f"{path}: empty file")):
        read_data_file(path)


def test_file_with_only_docstart_has_no_sentences(tmp_path):
    path = write(tmp_path / "doc.txt", "-DOCSTART- O\n\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no sentences")):
        read_conll(path)


def test_repair_counts_and_locates_fixed_entities(tmp_path):
    # The MSRA defect: a name cut across two "sentences", the second starting with an orphan M-/E-.
    text = "张 O\n震 S-PER\n\n万 M-PER\n年 E-PER\n说 O\n\n李 E-PER\n"
    path = write(tmp_path / "cut.txt", text)
    sentences, report = read_conll(path, repair=True)
    assert [s.entities for s in sentences] == [(Entity(1, 2, "PER"),), (Entity(0, 2, "PER"),), (Entity(0, 1, "PER"),)]
    assert report.repairs == 2
    assert report.repair_locations == [f"{path}:4", f"{path}:8"]


# --- JSON Lines ----------------------------------------------------------------------------------------------


def jsonl(*records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_reads_jsonl_in_every_entity_form(tmp_path):
    text = jsonl(
        {"text": "阿司匹林治头痛", "entities": [[0, 4, "药物"], [5, 7, "症状"]]},
        {"text": "李鹏在京", "label": [[3, 4, "LOC"], [0, 2, "PER"]]},
        {"id": 3, "text": "上海", "entities": [{"id": 1, "label": "LOC", "start_offset": 0, "end_offset": 2}]},
        {"text": "北京", "entities": [{"start": 0, "end": 1, "type": "LOC"}]},
        {"text": "没有", "label": []},
    )
    path = write(tmp_path / "data.jsonl", "\ufeff" + text.replace("\n", "\r\n"))
    sentences, report = read_jsonl(path)
    entities = (Entity(0, 4, "药物"), Entity(5, 7, "症状"))
    assert sentences[0] == Sentence(tuple("阿司匹林治头痛"), entities, f"{path}:1")
    assert sentences[1].entities == (Entity(0, 2, "PER"), Entity(3, 4, "LOC"))
    assert sentences[2].entities == (Entity(0, 2, "LOC"),)
    assert sentences[3].entities == (Entity(0, 1, "LOC"),)
    assert sentences[4].entities == ()
    assert (report.scheme, report.sentences, report.tokens) == ("doccano+jsonl", 5, 17)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": "abc", "entities": [[0, 1, "X"]', "invalid JSON in the value that starts on this line"),
        ('{"entities": []}', 'missing "text"'),
        ('{"text": 5, "entities": []}', '"text" must be a non-empty string'),
        ('{"text": "abc"}', 'missing "entities"'),
        ('{"text": "abc", "entities": [[0, 4, "X"]]}', r"entities\[0\] \[0, 4, 'X'\] is out of range"),
        ('{"text": "abc", "entities": [[2, 2, "X"]]}', "out of range"),
        ('{"text": "abc", "label": [[0, 2, "X"], [1, 3, "Y"]]}',
         r"label\[1\] \[1, 3\) Y overlaps label\[0\] \[0, 2\) X"),
        ('{"text": "abc", "entities": [[0, 1.5, "X"]]}', "end offset 1.5 is not an integer"),
        ('{"text": "abc", "entities": [["0", 1, "X"]]}', 'start offset "0" is not an integer'),
        ('{"text": "abc", "entities": [[0, 1, ""]]}', "entity type '' must be a non-empty string"),
        ('{"text": "abc", "entities": [[0, 1, "PER "]]}',
         "entity type 'PER ' must be a non-empty string without edge spaces"),
        ('{"text": "abc", "entities": [[0, 1]]}', r'expected \[start, end, "TYPE"\]'),
        ('{"text": "abc", "entities": [{"begin": 0}]}',
         "expected keys start_offset/end_offset/label or start/end/type"),
        ('["abc"]', "expected a JSON object"),
    ],
)
def test_jsonl_errors_name_file_line_and_field(tmp_path, line, message):
    path = write(tmp_path / "bad.jsonl", jsonl({"text": "好", "entities": []}) + "\n" + line + "\n")
    with raises_at(path, 3, message):
        read_jsonl(path)


def test_read_data_file_dispatches_on_content(tmp_path):
    conll = write(tmp_path / "a.jsonl", "{ O\n} O\n")  # a CoNLL file despite its name
    assert read_data_file(conll)[1].scheme == "bio"
    json_file = write(tmp_path / "b.txt", "\n" + jsonl({"text": "好", "entities": [[0, 1, "X"]]}))
    assert read_data_file(json_file)[1].scheme == "jsonl"


def test_read_channel_reads_all_files_in_sorted_order_skipping_hidden(tmp_path):
    write(tmp_path / "b.txt", "乙 S-PER\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.jsonl", jsonl({"text": "丙", "entities": []}))
    write(tmp_path / "a.txt", "甲 B-LOC\n")
    write(tmp_path / ".hidden.txt", "not data at all")
    (tmp_path / ".cache").mkdir()
    write(tmp_path / ".cache" / "x.txt", "nor this")
    sentences, report = read_channel(tmp_path)
    assert [s.tokens for s in sentences] == [("甲",), ("乙",), ("丙",)]
    assert report.files == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), str(tmp_path / "sub" / "c.jsonl")]
    assert (report.sentences, report.tokens, report.scheme) == (3, 3, "bio+bioes+jsonl")


def test_read_channel_errors(tmp_path):
    with pytest.raises(DataError, match="no data files"):
        read_channel(tmp_path)
    with pytest.raises(DataError, match="no such file or directory"):
        read_channel(tmp_path / "missing")
    bad = write(tmp_path / "bad.txt", "甲 O\n乙 I-X\n")
    with raises_at(bad, 2, "no opening"):
        read_channel(tmp_path)
    assert read_channel(tmp_path, repair=True)[1].repairs == 1
