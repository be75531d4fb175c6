"""CLUENER2020 files: inclusive ends, mentions checked, JSON Lines or one document over many lines."""

import json

import pytest

from albert_ner.data import read_data_file
from readers_helpers import conll_content, content, jsonl, raises_at, write

# The first record of CLUENER2020's train.json, shortened; the same name twice, inclusive ends.
RECORDS = [
    {"text": "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。叶老桂认为，",
     "label": {"name": {"叶老桂": [[9, 11], [32, 34]]}, "company": {"浙商银行": [[0, 3]]}}},
    {"text": "生生不息CSOL生化狂潮让你填弹狂扫", "label": {"game": {"CSOL": [[4, 7]]}}},
    {"text": "没有实体", "label": {}},
]


def equivalent_conll() -> str:
    lines = []
    for record in RECORDS:
        tags = ["O"] * len(record["text"])
        for entity_type, mentions in record["label"].items():
            for spans in mentions.values():
                for start, end in spans:
                    tags[start:end + 1] = [f"B-{entity_type}"] + [f"I-{entity_type}"] * (end - start)
        lines += [f"{char} {tag}" for char, tag in zip(record["text"], tags, strict=True)] + [""]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("layout", ["jsonl", "array", "pretty-printed objects"])
def test_reads_like_conll_in_every_layout(tmp_path, layout):
    text = {
        "jsonl": jsonl(*RECORDS),
        "array": json.dumps(RECORDS, ensure_ascii=False, indent=2),
        "pretty-printed objects": "\n".join(json.dumps(r, ensure_ascii=False, indent=4) for r in RECORDS),
    }[layout]
    path = write(tmp_path / "train.json", text)
    sentences, report = read_data_file(path)
    assert content(sentences) == conll_content(tmp_path, equivalent_conll())
    assert (report.scheme, report.sentences, report.entities) == ("cluener", 3, 4)
    opening = {"jsonl": "{", "array": "  {", "pretty-printed objects": "{"}[layout]
    starts = [n for n, line in enumerate(text.split("\n"), 1) if line.startswith(opening) and line.rstrip() in
              (opening, opening + '"text": ' + line.split('"text": ', 1)[-1])]
    assert [s.source for s in sentences] == [f"{path}:{n}" for n in starts]


@pytest.mark.parametrize("label, message", [
    ({"name": {"叶老": [[0, 1]]}}, r"label.name.叶老\[0\] \[0, 2\) is '好好' in the text, but the mention says '叶老'"),
    ({"name": {"好好好": [[0, 2]]}}, r"label.name.好好好\[0\] \[0, 3\) is out of range"),
    ({"name": {"好": [0, 0]}}, r"label.name.好\[0\]: expected \[start, end\] \(end inclusive\)"),
    ({"name": {"好": [[0, "0"]]}}, r"label.name.好\[0\]: offset '0' is not an integer"),
    ({"name": ["好"]}, "label.name must map each mention to its spans"),
    ({"name": {"好好": [[0, 1]]}, "x": {"好": [[1, 1]]}}, r"label.x.好\[0\] \[1, 2\) x overlaps label.name"),
])
def test_malformed_records_name_file_line_and_field(tmp_path, label, message):
    path = write(tmp_path / "dev.json", jsonl(RECORDS[2], {"text": "好好", "label": label}))
    with raises_at(path, 2, message):
        read_data_file(path)


def test_unlabelled_test_file_is_an_error(tmp_path):
    path = write(tmp_path / "test.json", jsonl({"id": 0, "text": "四川敦煌学”。"}))
    with raises_at(path, 1, 'missing "entities": this record has a text and no labels'):
        read_data_file(path)
