"""doccano's sequence-labelling exports, one test per export version, and relation projects."""

import pytest

from albert_ner.data import read_data_file
from readers_helpers import conll_content, content, jsonl, raises_at, write

EQUIVALENT_CONLL = "李 B-PER\n鹏 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n今 O\n天 O\n\n"
SPANS = [[3, 5, "LOC"], [0, 2, "PER"]]  # doccano writes them in the order they were made

EXPORTS = {
    "up to 1.2": [{"id": 1, "text": "李鹏在北京", "meta": {}, "annotation_approver": None, "labels": SPANS},
                  {"id": 2, "text": "今天", "meta": {}, "annotation_approver": None, "labels": []}],
    "1.3 to 1.6": [{"id": 1, "data": "李鹏在北京", "label": SPANS}, {"id": 2, "data": "今天", "label": []}],
    "1.7 on": [{"id": 1, "text": "李鹏在北京", "label": SPANS, "Comments": []},
               {"id": 2, "text": "今天", "label": [], "Comments": ["no entities"]}],
    "relation project": [
        {"id": 1, "text": "李鹏在北京", "entities": [
            {"id": 7, "label": "PER", "start_offset": 0, "end_offset": 2},
            {"id": 8, "label": "LOC", "start_offset": 3, "end_offset": 5}],
         "relations": [{"id": 1, "from_id": 7, "to_id": 8, "type": "located_in"}], "Comments": []},
        {"id": 2, "text": "今天", "entities": [], "relations": [], "Comments": []}],
}


@pytest.mark.parametrize("version", EXPORTS)
def test_every_export_version_reads_like_conll(tmp_path, version):
    path = write(tmp_path / "all.jsonl", jsonl(*EXPORTS[version]))
    sentences, report = read_data_file(path)
    assert content(sentences) == conll_content(tmp_path, EQUIVALENT_CONLL)
    assert report.scheme == "doccano"
    assert report.skipped == ({"doccano relations": 1} if version == "relation project" else {})


@pytest.mark.parametrize("record, message", [
    ({"id": 3, "data": "好", "label": [[0, 2, "X"]]},
     r'label\[0\] \[0, 2, .X.\] is out of range: need 0 <= start < end <= 1, the length of "data"'),
    ({"id": 3, "text": "好", "annotations": [{"label": 4, "start_offset": 0, "end_offset": 1, "user": 1}]},
     "names labels by number only"),
    ({"id": 3, "text": "好", "entities": [{"label": "X", "start_offset": 0}]}, r"entities\[0\] .*expected keys"),
    ({"id": 3, "text": "好好", "label": [[0, 2, "X"], [0, 2, "X"]]}, r"label\[1\] \[0, 2\) X overlaps label\[0\]"),
])
def test_malformed_records_name_file_line_and_field(tmp_path, record, message):
    path = write(tmp_path / "admin.jsonl", jsonl(EXPORTS["1.7 on"][1], record))
    with raises_at(path, 2, message):
        read_data_file(path)
