"""Label Studio exports of the NER template: the full JSON export and JSON-MIN."""

import json

import pytest

from albert_ner.data import read_data_file
from readers_helpers import conll_content, content, raises_at, write

EQUIVALENT_CONLL = "李 B-PER\n鹏 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n今 O\n天 O\n\n"


def result(start, end, text, label, **extra):
    return {"value": {"start": start, "end": end, "text": text, "labels": [label]}, "id": f"r{start}",
            "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual", **extra}


def annotation(number, results, created, **extra):
    return {"id": number, "completed_by": 1, "result": results, "was_cancelled": False, "ground_truth": False,
            "created_at": created, "updated_at": created, "lead_time": 3.2, "task": 1, **extra}


TASKS = [
    {"id": 1, "data": {"text": "李鹏在北京"}, "meta": {}, "project": 1, "predictions": [], "annotations": [
        annotation(10, [result(0, 2, "李鹏", "LOC")], "2024-01-01T10:00:00.000000Z"),
        annotation(11, [result(3, 5, "北京", "LOC"), result(0, 2, "李鹏", "PER"),
                        {"id": "rel", "from_id": "r0", "to_id": "r3", "type": "relation", "direction": "right"}],
                   "2024-01-02T10:00:00.000000Z"),
        annotation(12, [], "2024-01-03T10:00:00.000000Z", was_cancelled=True),
    ]},
    {"id": 2, "data": {"text": "今天"}, "annotations": [annotation(13, [], "2024-01-01T10:00:00Z")]},
    {"id": 3, "data": {"text": "未标注"}, "annotations": []},
]


def test_full_export_reads_like_conll(tmp_path):
    path = write(tmp_path / "project-1-at-2024.json", json.dumps(TASKS, ensure_ascii=False, indent=1))
    sentences, report = read_data_file(path)
    assert content(sentences) == conll_content(tmp_path, EQUIVALENT_CONLL)
    assert report.scheme == "label-studio"
    assert report.skipped == {"cancelled Label Studio annotations": 1, "Label Studio relation results": 1,
                              "Label Studio tasks without annotations": 1,
                              "older Label Studio annotations (the most recent one per task is used)": 1}


def test_json_min_reads_like_conll(tmp_path):
    def record(task, text, labels, annotation_id, created):
        row = {"text": text, "id": task, "annotator": 1, "annotation_id": annotation_id, "created_at": created,
               "updated_at": created, "lead_time": 2.5}
        if labels is not None:
            row["label"] = [{"start": s, "end": e, "text": t, "labels": [label]} for s, e, t, label in labels]
        return row

    records = [  # as the converter writes them: most recent annotation of a task first
        record(1, "李鹏在北京", [(0, 2, "李鹏", "PER"), (3, 5, "北京", "LOC")], 11, "2024-01-02T10:00:00Z"),
        record(1, "李鹏在北京", [(0, 2, "李鹏", "LOC")], 10, "2024-01-01T10:00:00Z"),
        record(2, "今天", None, 13, "2024-01-01T10:00:00Z"),
        {"text": "未标注", "id": 3, "annotator": None, "annotation_id": None, "created_at": None,
         "updated_at": None, "lead_time": None},
    ]
    path = write(tmp_path / "min.json", json.dumps(records, ensure_ascii=False, indent=2))
    sentences, report = read_data_file(path)
    assert content(sentences) == conll_content(tmp_path, EQUIVALENT_CONLL)
    assert report.skipped == {"Label Studio tasks without annotations": 1,
                              "older Label Studio annotations (the most recent one per task is used)": 1}


def test_utf16_offsets_are_named_and_converted_on_request(tmp_path):
    # The browser counts the emoji as two UTF-16 code units: every later span is one too far.
    task = {"id": 1, "data": {"text": "😀李鹏在北京"}, "annotations": [
        annotation(1, [result(2, 4, "李鹏", "PER"), result(5, 7, "北京", "LOC")], "t")]}
    path = write(tmp_path / "emoji.json", json.dumps([task], ensure_ascii=False))
    with raises_at(path, 1, r"is '鹏在' in the text, but the mention says '李鹏'; the offsets fit when counted in "
                   "UTF-16 code units .* set the hyperparameter utf16_offsets=true"):
        read_data_file(path)
    sentences, report = read_data_file(path, utf16_offsets=True)
    assert [tuple(e) for e in sentences[0].entities] == [(1, 3, "PER"), (4, 6, "LOC")]
    assert report.utf16_converted == 1


@pytest.mark.parametrize("value, message", [
    ({"start": 0, "end": 2, "text": "李", "labels": ["PER"]}, "is '李鹏' in the text, but the mention says '李'"),
    ({"start": 0, "end": 2, "text": "李鹏", "labels": ["PER", "LOC"]}, "expected exactly one label per span"),
    ({"start": 0, "text": "李鹏", "labels": ["PER"]}, r'annotations\[0\].result\[0\].value: expected \{"start"'),
    ({"start": 0, "end": 9, "text": "李鹏", "labels": ["PER"]}, r"\[0, 9\) is out of range"),
])
def test_malformed_results_name_file_line_and_field(tmp_path, value, message):
    tasks = [TASKS[1], {"id": 5, "data": {"text": "李鹏"}, "annotations": [
        annotation(1, [{"value": value, "from_name": "label", "to_name": "text", "type": "labels"}], "t")]}]
    path = write(tmp_path / "bad.json", json.dumps(tasks, ensure_ascii=False, indent=1).replace("\n", "\r\n"))
    line = next(n for n, text in enumerate(path.read_text().split("\n"), 1) if '"id": 5' in text) - 1
    with raises_at(path, line, message):
        read_data_file(path)
