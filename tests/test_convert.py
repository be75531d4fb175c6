"""`albert-ner convert`: what the job would train on, written as CoNLL or JSON Lines."""

import json
import logging

from albert_ner.cli import main
from albert_ner.data import read_channel, read_jsonl
from albert_ner.readers.conll import read_conll
from readers_helpers import content, write

CLUENER = {"text": "李鹏在北京 开会", "label": {"PER": {"李鹏": [[0, 1]]}, "LOC": {"北京": [[3, 4]]}}}


class Result:
    def __init__(self, capsys, caplog, *args):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            self.returncode = main(["convert", *map(str, args)])
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err + caplog.text


def test_converts_any_input_to_conll_in_the_job_scheme_and_to_jsonl(tmp_path, capsys, caplog):
    def convert(*args):
        return Result(capsys, caplog, *args)

    source = write(tmp_path / "train.json", json.dumps(CLUENER, ensure_ascii=False) + "\n")
    result = convert(source, "--output", tmp_path / "out.conll")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.conll").read_text(encoding="utf-8").startswith("李\tB-PER\n鹏\tE-PER\n在\tO\n")
    assert content(read_conll(tmp_path / "out.conll")[0]) == content(read_channel(source)[0])
    result = convert(source, "--to", "jsonl", "--tag-scheme", "bio")
    assert json.loads(result.stdout) == {"text": "李鹏在北京 开会", "entities": [[0, 2, "PER"], [3, 5, "LOC"]],
                                         "read_from": f"{source}:1"}
    write(tmp_path / "out.jsonl", result.stdout)
    assert content(read_jsonl(tmp_path / "out.jsonl")[0]) == content(read_channel(source)[0])


def test_reading_options_and_errors_are_those_of_a_job(tmp_path, capsys, caplog):
    def convert(*args):
        return Result(capsys, caplog, *args)

    overlapping = {"text": "北京大学", "label": [[0, 4, "ORG"], [0, 2, "LOC"]]}
    source = write(tmp_path / "admin.jsonl", json.dumps(overlapping, ensure_ascii=False) + "\n")
    result = convert(source)
    assert result.returncode == 2 and f"{source}:1: label[1] [0, 2) LOC overlaps label[0]" in result.stderr
    result = convert(source, "--overlapping-entities", "longest")
    assert result.returncode == 0 and result.stdout == "北\tB-ORG\n京\tI-ORG\n大\tI-ORG\n学\tE-ORG\n\n"
    assert "1 overlapping entities dropped" in result.stderr
    result = convert(source, "--overlapping-entities", "some")
    assert result.returncode == 2 and "overlapping_entities='some': expected one of error, longest, first" in (
        result.stderr)
