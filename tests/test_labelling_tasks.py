"""Sentences to label as the labelling tools import them: Label Studio's labelling config read for where the
entities go, the entities as its prediction regions, and the task files, read back by the job's own readers
to the same spans (offsets in code points, as Label Studio counts: emoji outside the BMP are one character,
``\\r\\n`` is two)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter

import pytest

from albert_ner.confidence import ScoredPrediction
from albert_ner.data import read_data_file
from albert_ner.label_studio.config import (
    MAX_CONFIG_CHARS,
    LabelConfigError,
    parse_label_config,
    parse_label_mapping,
    stock_interface,
)
from albert_ner.label_studio.predictions import prediction, task
from albert_ner.labelling_tasks import DOCCANO, GROUND_TRUTH, LABEL_STUDIO, TaskWriter
from albert_ner.model_directory import model_version
from albert_ner.sentences import Entity

STOCK = """<View>
  <Labels name="label" toName="text">
    <Label value="PER" background="red"/>
    <Label value="ORG" background="darkorange"/>
    <Label value="LOC" background="orange"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""

# Texts whose offsets differ between code points, UTF-16 units and bytes, or that a careless writer would
# strip or normalise: astral-plane characters, an emoji, full-width punctuation, CRLF, leading spaces.
TEXTS_AND_ENTITIES = [
    ("  张伟在北京。", [Entity(2, 4, "PER"), Entity(5, 7, "LOC")]),
    ("😀张伟，去了「上海」！", [Entity(1, 3, "PER"), Entity(7, 9, "LOC")]),
    ("𠀋𠀌李明在𡈽田公司\r\n工作", [Entity(2, 4, "PER"), Entity(5, 9, "ORG")]),
    ("第一行\r\n王芳住在杭州", [Entity(5, 7, "PER"), Entity(9, 11, "LOC")]),
]


def scored(entities: list[Entity], scores: list[float] | None = None, sentence_score: float = 0.8) -> ScoredPrediction:
    return ScoredPrediction(tags=[], entities=entities, scores=scores or [0.9] * len(entities),
                            sentence_score=sentence_score)


def test_the_stock_template_gives_its_names_and_labels() -> None:
    interface = parse_label_config(STOCK)
    assert (interface.from_name, interface.to_name, interface.data_key) == ("label", "text", "text")
    assert interface.labels == ("PER", "ORG", "LOC")
    assert interface.label_for("PER") == "PER" and interface.label_for("产品") is None
    assert stock_interface(["PER", "ORG", "LOC"]).labels == interface.labels


def test_a_config_of_its_own_names_aliases_and_a_mapping() -> None:
    config = """<View>
      <Header value="$title"/>
      <Choices name="sentiment" toName="body"><Choice value="good"/></Choices>
      <Labels name="image_boxes" toName="photo"><Label value="PER"/></Labels>
      <Image name="photo" value="$image"/>
      <Labels name="ner" toName="body"><Label value="Person" alias="人名"/><Label value="Place"/></Labels>
      <Text name="body" value="$content"/>
    </View>"""
    interface = parse_label_config(config, parse_label_mapping("PER=人名, LOC=Place"))
    assert (interface.from_name, interface.to_name, interface.data_key) == ("ner", "body", "content")
    assert interface.labels == ("人名", "Place")
    assert [interface.label_for(t) for t in ("PER", "LOC", "ORG")] == ["人名", "Place", None]
    assert interface.text_of({"content": "张三", "title": "x"}) == "张三"
    with pytest.raises(LabelConfigError, match=r'data\["content"\].*data keys: text'):
        interface.text_of({"text": "张三"})


@pytest.mark.parametrize(("config", "message"), [
    ("<View><Text name='text' value='$text'/></View>", "no <Labels> control"),
    ("<View><RectangleLabels name='b' toName='i'><Label value='A'/></RectangleLabels><Image name='i' value='$i'/>"
     "</View>", "it has RectangleLabels"),
    ("<View><Labels name='l' toName='img'><Label value='A'/></Labels><Image name='img' value='$i'/></View>",
     "no <Labels> control with a toName naming a <Text>"),
    ("<View><Labels name='l' toName='t'><Label value='A'/></Labels><Text name='t' value='literal'/></View>",
     'value="literal": expected "\\$key"'),
    ("<View><Labels name='l' toName='t'></Labels><Text name='t' value='$text'/></View>", "no <Label"),
    ("<View><Labels name='l' toName='t'><Label value='A'/></Labels><Text name='t' value='$url' valueType='url'/>"
     "</View>", 'valueType="url": its task field holds a URL'),
    ("<View><Labels name='a' toName='t'><Label value='A'/></Labels><Labels name='b' toName='t'><Label value='B'/>"
     "</Labels><Text name='t' value='$text'/></View>", r"2 <Labels> controls over a <Text> \(a, b\)"),
    ("<View><Labels", "not valid XML"),
    ("<View>" + " " * MAX_CONFIG_CHARS + "</View>", "the limit is 1,000,000"),
])
def test_a_config_without_one_usable_labels_control_is_refused_saying_why(config: str, message: str) -> None:
    with pytest.raises(LabelConfigError, match=message):
        parse_label_config(config)


def test_a_named_control_is_chosen_among_several() -> None:
    config = ("<View><Labels name='a' toName='t'><Label value='A'/></Labels><Labels name='b' toName='t'>"
              "<Label value='B'/></Labels><Text name='t' value='$text'/></View>")
    assert parse_label_config(config, from_name="b").labels == ("B",)
    with pytest.raises(LabelConfigError, match="no <Labels name=\"c\">.*: a, b"):
        parse_label_config(config, from_name="c")


@pytest.mark.parametrize("text", ["PER", "PER=", "=Person", "PER=a,PER=b"])
def test_a_bad_label_mapping_is_refused(text: str) -> None:
    with pytest.raises(LabelConfigError, match="TYPE=LABEL|twice"):
        parse_label_mapping(text)


def test_regions_carry_code_point_offsets_the_mention_and_its_score() -> None:
    text, entities = TEXTS_AND_ENTITIES[2]
    interface = parse_label_config(STOCK.replace('value="LOC"', 'value="ORG2"'), parse_label_mapping("ORG=ORG"))
    left_out: Counter[str] = Counter()
    result = prediction(text, scored(entities + [Entity(10, 12, "LOC")], [0.91, 0.5, 0.7], 0.25), interface,
                        "albert-ner-abc", left_out)
    assert result["model_version"] == "albert-ner-abc" and result["score"] == 0.25
    assert left_out == {"LOC": 1}
    assert [region["value"] for region in result["result"]] == [
        {"start": 2, "end": 4, "text": "李明", "labels": ["PER"]},
        {"start": 5, "end": 9, "text": "𡈽田公司", "labels": ["ORG"]}]
    assert [region["score"] for region in result["result"]] == [0.91, 0.5]
    assert all(region["from_name"] == "label" and region["to_name"] == "text" and region["type"] == "labels"
               for region in result["result"])
    assert len({region["id"] for region in result["result"]}) == 2


def test_label_studio_tasks_read_back_to_the_same_spans(tmp_path) -> None:
    """Tasks written for import, annotated as predicted (the prediction's regions as the annotation), and
    exported: the job's Label Studio reader gets exactly the predicted spans back."""
    output = io.StringIO()
    writer = TaskWriter(output, LABEL_STUDIO, interface=stock_interface(["PER", "ORG", "LOC"]), model_version="v1")
    for text, entities in TEXTS_AND_ENTITIES:
        writer.write(text, scored(entities))
    writer.close()
    tasks = json.loads(output.getvalue())
    assert [task["data"]["text"] for task in tasks] == [text for text, _ in TEXTS_AND_ENTITIES]
    export = [{"id": number, "data": task["data"],
               "annotations": [{"id": number, "result": task["predictions"][0]["result"]}]}
              for number, task in enumerate(tasks, start=1)]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    sentences, _ = read_data_file(path)
    assert [("".join(s.tokens), sorted(s.entities)) for s in sentences] == \
        [(text, sorted(entities)) for text, entities in TEXTS_AND_ENTITIES]


def test_doccano_records_read_back_to_the_same_spans(tmp_path) -> None:
    output = io.StringIO()
    writer = TaskWriter(output, DOCCANO)
    for text, entities in TEXTS_AND_ENTITIES:
        writer.write(text, scored(entities))
    writer.close()
    path = tmp_path / "doccano.jsonl"
    path.write_text(output.getvalue(), encoding="utf-8")
    first = json.loads(output.getvalue().splitlines()[0])
    assert first == {"text": "  张伟在北京。", "label": [[2, 4, "PER"], [5, 7, "LOC"]]}
    sentences, _ = read_data_file(path)
    assert [("".join(s.tokens), sorted(s.entities)) for s in sentences] == \
        [(text, sorted(entities)) for text, entities in TEXTS_AND_ENTITIES]


def test_an_empty_label_studio_file_is_an_empty_list_and_ground_truth_stays_as_it_was() -> None:
    output = io.StringIO()
    TaskWriter(output, LABEL_STUDIO, interface=stock_interface(["PER"])).close()
    assert json.loads(output.getvalue()) == []
    output = io.StringIO()
    writer = TaskWriter(output, GROUND_TRUTH)
    writer.write("张伟", scored([Entity(0, 2, "PER")]))
    writer.close()
    assert output.getvalue() == '{"source": "张伟"}\n'


def test_a_task_holds_the_text_under_the_configs_data_key() -> None:
    interface = parse_label_config(STOCK.replace("$text", "$sentence"))
    assert task("张伟", scored([Entity(0, 2, "PER")]), interface, "v")["data"] == {"sentence": "张伟"}


# ------------------------------------------------------------------ the command lines, on the trained model
SURE = "王芳在南京的清华大学工作。"


def albert_ner(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "albert_ner", *arguments], capture_output=True, text=True,
                          timeout=300)


def test_predict_writes_label_studio_tasks_for_the_projects_config(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    config = tmp_path / "config.xml"
    config.write_text(STOCK.replace('value="PER"', 'value="人物"').replace("$text", "$sentence"), encoding="utf-8")
    output = tmp_path / "tasks.json"
    result = albert_ner("predict", "--model-dir", str(opt_ml.model_dir), "--text", SURE, "--text", "",
                        "--format", "label-studio", "--label-config", str(config), "--label-mapping", "PER=人物",
                        "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    tasks = json.loads(output.read_text(encoding="utf-8"))
    assert [task["data"] for task in tasks] == [{"sentence": SURE}, {"sentence": ""}]
    (first,) = tasks[0]["predictions"]
    assert first["model_version"] == model_version(opt_ml.model_dir)
    assert {(region["value"]["labels"][0], region["value"]["text"]) for region in first["result"]} == {
        ("人物", "王芳"), ("LOC", "南京"), ("ORG", "清华大学")}
    assert all(SURE[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] for r in first["result"])
    assert tasks[1]["predictions"][0]["result"] == []


def test_predict_names_a_config_it_cannot_use(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    config = tmp_path / "config.xml"
    config.write_text("<View><Text name='text' value='$text'/></View>", encoding="utf-8")
    output = tmp_path / "tasks.json"
    result = albert_ner("predict", "--model-dir", str(opt_ml.model_dir), "--text", SURE, "--format", "label-studio",
                        "--label-config", str(config), "--output", str(output))
    assert result.returncode == 2 and f"{config}: the labelling config has no <Labels>" in result.stderr
    assert not output.exists()


def test_select_writes_label_studio_and_doccano_tasks_and_counts_what_the_config_lacks(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    source = tmp_path / "unlabelled.txt"
    source.write_text(f"{SURE}\n李娜在成都的华为公司工作。\n", encoding="utf-8")
    config = tmp_path / "config.xml"
    config.write_text(STOCK.replace('<Label value="PER" background="red"/>', ""), encoding="utf-8")
    tasks_file = tmp_path / "tasks.json"
    result = albert_ner("select", "--model-dir", str(opt_ml.model_dir), "--input", str(source), "--budget", "5",
                        "--format", "label-studio", "--label-config", str(config), "--output", str(tasks_file))
    assert result.returncode == 0, result.stderr[-2000:]
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    assert {task["data"]["text"] for task in tasks} == {SURE, "李娜在成都的华为公司工作。"}
    scores = [task["predictions"][0]["score"] for task in tasks]
    assert scores == sorted(scores), "most uncertain (lowest probability of the tagging) first"
    assert all(region["value"]["labels"][0] in {"ORG", "LOC"} for task in tasks
               for region in task["predictions"][0]["result"])
    assert "left out entities of types the labelling config has no label for: 2 PER" in result.stderr

    doccano = tmp_path / "doccano.jsonl"
    result = albert_ner("select", "--model-dir", str(opt_ml.model_dir), "--input", str(source), "--budget", "1",
                        "--format", "doccano", "--output", str(doccano))
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = [json.loads(line) for line in doccano.read_text(encoding="utf-8").splitlines()]
    assert set(record) == {"text", "label"} and record["text"] == tasks[0]["data"]["text"]
    sentences, _ = read_data_file(doccano)
    assert sorted(tuple(entity) for entity in sentences[0].entities) == sorted(
        (start, end, label) for start, end, label in record["label"])

    result = albert_ner("select", "--model-dir", str(opt_ml.model_dir), "--input", str(source), "--budget", "1",
                        "--format", "doccano", "--pre-annotate", "round-1", "--output", str(tmp_path / "x"))
    assert result.returncode == 2 and "--pre-annotate names a Ground Truth label attribute" in result.stderr
