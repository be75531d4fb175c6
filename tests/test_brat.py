"""brat standoff documents: NAME.txt with NAME.ann, cut into sentences with exact offsets."""

import pytest

from albert_ner.data import read_channel, read_data_file
from readers_helpers import conll_content, content, raises_at, write

TEXT = "李鹏在北京。今天\n下雨！\n\n  上海\n浦东很远"
# 上海\n浦东 is one entity across a line break, so that break is no sentence end.
ANNOTATIONS = (
    "T1\tPER 0 2\t李鹏\n"
    "T2\tLOC 3 5\t北京\n"
    "T3\tLOC 16 21\t上海 浦东\n"
    "R1\tLocated Arg1:T1 Arg2:T2\n"
    "E1\tMove:T1 Dest:T2\n"
    "A1\tNegated E1\n"
    "M1\tUncertain E1 High\n"
    "N1\tReference T1 Wikipedia:1 李鹏\n"
    "*\tEquiv T2 T3\n"
    "#1\tAnnotatorNotes T1\t一个人\n"
)
# The last sentence holds the line break inside the entity, which CoNLL cannot write: it is checked apart.
EQUIVALENT_CONLL = "李 B-PER\n鹏 I-PER\n在 O\n北 B-LOC\n京 I-LOC\n。 O\n\n今 O\n天 O\n\n下 O\n雨 O\n！ O\n\n"


def document(directory, annotations=ANNOTATIONS, text=TEXT, name="doc"):
    directory.mkdir(parents=True, exist_ok=True)
    write(directory / f"{name}.txt", text)
    return write(directory / f"{name}.ann", annotations)


def test_document_reads_like_conll_in_sentences(tmp_path):
    channel = tmp_path / "channel"
    annotations = document(channel)
    write(channel / "annotation.conf", "# brat\n[entities]\nPER\nLOC\n[relations]\n[events]\n[attributes]\n")
    sentences, report = read_channel(channel)
    assert content(sentences)[:3] == conll_content(tmp_path, EQUIVALENT_CONLL)
    last = sentences[3]
    assert "".join(last.tokens) == "上海\n浦东很远" and [tuple(e) for e in last.entities] == [(0, 5, "LOC")]
    assert [s.source for s in sentences] == [f"{channel / 'doc.txt'}:{n}" for n in (1, 1, 2, 4)]
    assert report.files == [str(channel / "annotation.conf"), str(channel / "doc.txt"), str(annotations)]
    assert report.skipped == {"brat relations": 1, "brat events": 1, "brat attributes": 2,
                              "brat normalisations": 1, "brat equivalences": 1, "brat notes": 1,
                              "brat configuration files": 1}
    assert (report.scheme, report.sentences, report.entities) == ("brat", 4, 3)


def test_either_file_of_a_pair_reads_the_document_and_empty_annotations_are_a_document(tmp_path):
    annotations = document(tmp_path)
    assert read_data_file(tmp_path / "doc.txt")[0] == read_data_file(annotations)[0]
    document(tmp_path, annotations="", text="今天下雨。明天晴", name="plain")
    sentences, report = read_channel(tmp_path)
    assert ["".join(s.tokens) for s in sentences[4:]] == ["今天下雨。", "明天晴"]
    assert sentences[4].entities == () and report.sentences == 6


@pytest.mark.parametrize("line, message", [
    ("T4\tLOC 3 5;6 8\t北京 今天", "T4: discontinuous span '3 5;6 8' cannot be tagged as one entity"),
    ("T4\tLOC 3 5\t上海", r"T4 \[3, 5\) is '北京' in the text, but the mention says '上海'"),
    ("T4\tLOC 3 99\t北京", r"T4 \[3, 99\) is out of range"),
    ("T4\tLOC 3\t北京", "T4: expected 'TYPE START END<TAB>TEXT'"),
    ("T4\tLOC 3 5\t北京", r"T4 \[3, 5\) LOC overlaps T2 \[3, 5\) LOC"),
    ("T4\tPLACE 2 4\t在北", r"T2 \[3, 5\) LOC overlaps T4 \[2, 4\) PLACE"),
])
def test_malformed_annotations_name_file_line_and_field(tmp_path, line, message):
    annotations = document(tmp_path, annotations=ANNOTATIONS.replace("R1\t", line + "\nR1\t"))
    with raises_at(annotations, 4, message):
        read_data_file(annotations)


def test_not_a_brat_line_and_missing_text(tmp_path):
    annotations = document(tmp_path, annotations="T1\tPER 0 2\t李鹏\nsomething else\n")
    with raises_at(annotations, 2, "not a brat annotation line"):
        read_channel(tmp_path)
    (tmp_path / "doc.txt").unlink()
    with pytest.raises(Exception, match=r"doc.ann: brat annotations without their text: doc.txt is missing"):
        read_channel(tmp_path)


def test_overlap_options(tmp_path):
    nested = "T1\tORG 0 4\t北京大学\nT2\tLOC 0 2\t北京\nT3\tPER 3 6\t学生甲\n"
    annotations = document(tmp_path, annotations=nested, text="北京大学生甲")
    longest = read_data_file(annotations, overlapping_entities="longest")
    assert [tuple(e) for e in longest[0][0].entities] == [(0, 4, "ORG")] and longest[1].overlaps_resolved == 2
    first = read_data_file(annotations, overlapping_entities="first")
    assert [tuple(e) for e in first[0][0].entities] == [(0, 4, "ORG")]
    nested = "T1\tORG 1 4\t京大学\nT2\tLOC 0 2\t北京\nT3\tPER 4 6\t生甲\n"
    annotations = document(tmp_path, annotations=nested, text="北京大学生甲")
    assert [tuple(e) for e in read_data_file(annotations, overlapping_entities="first")[0][0].entities] == [
        (0, 2, "LOC"), (4, 6, "PER")]
    assert [tuple(e) for e in read_data_file(annotations, overlapping_entities="longest")[0][0].entities] == [
        (1, 4, "ORG"), (4, 6, "PER")]


def test_corpus_documentation_beside_documents_is_skipped_but_not_elsewhere(tmp_path):
    corpus = tmp_path / "corpus"
    document(corpus / "train")
    write(corpus / "README", "The news corpus.\nAnnotated by two people.\n")
    write(corpus / "train" / "LICENSE", "Creative Commons Attribution 4.0\n")
    sentences, report = read_channel(corpus)
    assert len(sentences) == 4
    assert report.skipped["files beside brat documents that hold no labels (README, LICENSE, ...)"] == 2
    write(corpus / "train" / "broken.ann", "T1\tPER 0 2\t李鹏\nT2\tPER 0 1\t李\n")
    write(corpus / "train" / "broken.txt", "李鹏")
    with raises_at(corpus / "train" / "broken.ann", 2, "overlaps"):
        read_channel(corpus)
    (corpus / "train" / "broken.ann").unlink()
    (corpus / "other").mkdir()
    write(corpus / "other" / "README", "no brat here\n")
    with raises_at(corpus / "other" / "README", 1, "fits no tag scheme"):
        read_channel(corpus / "other")
