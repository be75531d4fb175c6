"""SageMaker Ground Truth named-entity output manifests, written as the labelling job writes them."""

import pytest

from albert_ner.data import read_data_file
from readers_helpers import conll_content, content, jsonl, raises_at, write

EQUIVALENT_CONLL = "李 B-PER\n鹏 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n\n今 O\n天 O\n\n"


def ner_line(source, entities, attribute="ner-job", **extra):
    line = {"source": source,
            attribute: {"annotations": {"entities": entities, "labels": [{"label": "PER"}, {"label": "LOC"}]}},
            f"{attribute}-metadata": {"entities": [{"confidence": 0.9}] * len(entities),
                                      "job-name": f"labeling-job/{attribute}", "type": "groundtruth/text-span",
                                      "creation-date": "2020-05-14T21:45:27.175903", "human-annotated": "yes"}}
    line.update(extra)
    return line


def test_output_manifest_reads_like_conll_with_unsorted_entities(tmp_path):
    manifest = jsonl(
        # Unsorted, as workers highlight them; endOffset is exclusive.
        ner_line("李鹏在北京", [{"label": "LOC", "startOffset": 3, "endOffset": 5},
                            {"label": "PER", "startOffset": 0, "endOffset": 2}]),
        ner_line("今天", []),
    )
    path = write(tmp_path / "output.manifest", manifest)
    sentences, report = read_data_file(path)
    assert content(sentences) == conll_content(tmp_path, EQUIVALENT_CONLL)
    assert sentences[1].source == f"{path}:2"
    assert (report.scheme, report.sentences, report.entities) == ("ground-truth", 2, 2)


def test_failed_objects_are_skipped_and_counted(tmp_path):
    failed = {"source": "没标", "ner-job-metadata": {"failure-reason": "ClientError: expired",
                                                   "job-name": "labeling-job/ner-job"}}
    path = write(tmp_path / "output.manifest", jsonl(ner_line("今天", []), failed))
    sentences, report = read_data_file(path)
    assert len(sentences) == 1
    assert report.skipped == {"Ground Truth objects the labelling job failed to label": 1}


def test_chained_jobs_need_label_attribute(tmp_path):
    chained = ner_line("李鹏", [{"label": "PER", "startOffset": 0, "endOffset": 2}])
    chained.update({k.replace("ner-job", "second-job"): v for k, v in
                    ner_line("李鹏", [{"label": "X", "startOffset": 0, "endOffset": 1}]).items() if k != "source"})
    path = write(tmp_path / "output.manifest", jsonl(ner_line("今天", []), chained))
    with raises_at(path, 2, "several named-entity label attributes on this line .ner-job, second-job.: set the "
                   "hyperparameter label_attribute"):
        read_data_file(path)
    with raises_at(path, 1, "no label attribute 'second-job' .hyperparameter label_attribute. on this line"):
        read_data_file(path, label_attribute="second-job")
    path = write(tmp_path / "chained.manifest", jsonl(chained, chained))
    sentences, _ = read_data_file(path, label_attribute="second-job")
    assert [tuple(s.entities[0]) for s in sentences] == [(0, 1, "X")] * 2


def test_overlaps_from_multi_label_highlights(tmp_path):
    path = write(tmp_path / "output.manifest", jsonl(ner_line("北京大学", [
        {"label": "ORG", "startOffset": 0, "endOffset": 4}, {"label": "LOC", "startOffset": 0, "endOffset": 2}])))
    with raises_at(path, 1, r"ner-job.annotations.entities\[1\] \[0, 2\) LOC overlaps "
                   r"ner-job.annotations.entities\[0\] \[0, 4\) ORG"):
        read_data_file(path)
    sentences, report = read_data_file(path, overlapping_entities="longest")
    assert [tuple(e) for e in sentences[0].entities] == [(0, 4, "ORG")] and report.overlaps_resolved == 1


@pytest.mark.parametrize("line, message", [
    ({"source-ref": "s3://bucket/doc.txt", "ner-job": {}}, "points to an S3 object, not to text in the channel"),
    ({"source": "好", "sentiment": 1, "sentiment-metadata": {"class-name": "positive", "job-name": "labeling-job/s",
                                                           "type": "groundtruth/text-classification"}},
     "label attribute 'sentiment' is of type 'groundtruth/text-classification', not named entity recognition"),
    ({"source": "好"}, "no named-entity label attribute"),
    (ner_line("好", [{"label": "X", "startOffset": 0}]),
     r'ner-job.annotations.entities\[0\]: expected \{"label", "startOffset", "endOffset"\}'),
    (ner_line("好", [{"label": "X", "startOffset": 0, "endOffset": 2}]),
     r"ner-job.annotations.entities\[0\] \[0, 2\) is out of range"),
    (ner_line("好", [{"label": "X", "startOffset": 0, "endOffset": "1"}]),
     r"ner-job.annotations.entities\[0\].endOffset: offset '1' is not an integer"),
    (ner_line("好", [{"label": " X", "startOffset": 0, "endOffset": 1}]),
     r"ner-job.annotations.entities\[0\].label: the entity type ' X'"),
    (ner_line("", []), "the text must be a non-empty string"),
])
def test_malformed_lines_name_file_line_and_field(tmp_path, line, message):
    path = write(tmp_path / "output.manifest", jsonl(ner_line("今天", []), line))
    with raises_at(path, 2, message):
        read_data_file(path)
