"""report.html: a strict HTML5 parse, user text shown as text, the figures of the JSON reports, and a real
headless Chromium rendering the trained sample model's page without console errors."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import html5lib
import pytest
from PIL import Image

from albert_ner.data_summary import SplitSummary
from albert_ner.evaluation import EvaluatedSplit, evaluate
from albert_ner.report_page import ReportPage, render_report_page
from albert_ner.sentences import Entity as E
from albert_ner.sentences import Sentence
from albert_ner.training_history import TrainingHistory
from conftest import REPO, SAMPLE

HOSTILE = '<script>alert("x")</script> & \'q\''
HOSTILE_TYPE = 'T<x-hostile>&"'


def parse(page: str) -> ElementTree.Element:
    """Parse as a browser would (the WHATWG algorithm), failing on any parse error."""
    parser = html5lib.HTMLParser(strict=True, tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
    return parser.parse(page)


def text(element: ElementTree.Element) -> str:
    return "".join(element.itertext())


def sentence_text(element: ElementTree.Element) -> str:
    """A highlighted line's characters: its text without the entity-type labels and the gold/predicted label."""
    parts = [element.text or ""]
    for child in element:
        if child.tag != "sub" and "who" not in child.attrib.get("class", ""):
            parts.append(sentence_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def table_rows(root: ElementTree.Element, selector: str) -> dict[str, list[str]]:
    """The rows of the first table under the element with id ``selector``: first cell -> the other cells."""
    container = root.find(f".//*[@id='{selector}']")
    assert container is not None, selector
    table = container if container.tag == "table" else container.find(".//table")
    assert table is not None
    return {text(row[0]).strip(): [text(cell).strip() for cell in row[1:]] for row in table.iter("tr")}


def hostile_page(history: TrainingHistory | None = None) -> str:
    tokens = tuple(HOSTILE)
    gold = Sentence(tokens, (E(0, 8, HOSTILE_TYPE), E(20, 21, "LOC")), source="<data>&.txt:1")
    predicted = [[E(0, 5, HOSTILE_TYPE), E(10, 12, "LOC")]]
    report = evaluate([gold], predicted)
    summary = SplitSummary("test", 1, len(tokens), {HOSTILE_TYPE: 1, "LOC": 1}, 1, 0, 126, 0.0, "", 0)
    return render_report_page(ReportPage(
        "report & <title>", [EvaluatedSplit("test", [gold], predicted, report)], [summary], history,
        hyperparameters={"entity_types": [HOSTILE_TYPE], "seed": 1},
        job={"stopped": "max_steps <reached>"}, provenance={"encoder": "from 'scratch' & \"here\""}))


def test_user_text_is_escaped_and_shown_as_text() -> None:
    root = parse(hostile_page())
    assert root.find(".//script") is None and root.find(".//x-hostile") is None
    lines = [sentence_text(line) for line in root.iter("div") if line.attrib.get("class") == "line"]
    assert lines == [HOSTILE, HOSTILE]  # gold and predicted, reassembled from their highlighted pieces
    page_text = text(root)
    assert HOSTILE_TYPE in page_text and "<data>&.txt:1" in page_text
    assert json.dumps([HOSTILE_TYPE]) in page_text and "from 'scratch' & \"here\"" in page_text
    assert text(root.find(".//title")) == "report & <title>"


def test_nothing_is_fetched_from_anywhere() -> None:
    history = TrainingHistory()
    history.record_log(10, 1, 2.0, 1e-3, 100.0)
    page = hostile_page(history)
    root = parse(page)
    references = [value for element in root.iter() for name, value in element.attrib.items()
                  if name in ("src", "href", "srcset", "action", "data")]
    assert references and all(value.startswith("data:") for value in references)
    assert "url(" not in page and "@import" not in page


def test_curves_are_an_svg_of_the_history_and_a_resume_is_explained(tmp_path: Path) -> None:
    earlier = TrainingHistory()
    for step in (10, 20, 30):
        earlier.record_log(step, 1, 3.0 / step, 1e-3, 120.0)
    earlier.record_evaluation(20, 1, 0.5, 0.4, 0.44, 1.0)
    earlier.save(tmp_path)
    earlier.record_log(40, 1, 0.05, 1e-3, 120.0)  # after the checkpoint: the resumed run redoes it
    earlier.save(tmp_path)

    history = TrainingHistory()
    history.resume(tmp_path, 30)
    assert [point.step for point in history.log_points] == [10, 20, 30] and history.resumed_at == [30]
    history.record_log(40, 1, 0.06, 9e-4, 130.0)
    history.record_evaluation(40, 1, 0.8, 0.7, 0.75, 1.0)
    history.lap("training")

    root = parse(hostile_page(history))
    image = root.find(".//img[@class='curves']")
    assert image is not None
    svg = base64.b64decode(image.attrib["src"].removeprefix("data:image/svg+xml;base64,"))
    assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    assert "resumed from a checkpoint at step 30" in " ".join(text(root).split())
    evaluations = table_rows(root, "evaluations")
    assert [cells[1] for name, cells in evaluations.items() if name != "evaluation"] == ["20", "40"]
    assert "training" in table_rows(root, "phases")


# ------------------------------------------------------------------------------ the trained sample job
def test_train_writes_the_page_with_the_figures_of_the_json_reports(trained_job) -> None:
    opt_ml, result = trained_job
    root = parse((opt_ml.output_data_dir / "report.html").read_text(encoding="utf-8"))
    for split in ("validation", "test"):
        saved = json.loads((opt_ml.model_dir / f"{split}_report.json").read_text())["entity_level_strict"]
        rows = table_rows(root, f"scores-{split}")
        expected = {**saved["per_type"], "micro avg": saved["micro_avg"], "macro avg": saved["macro_avg"]}
        for name, scores in expected.items():
            assert rows[name] == [f"{scores['precision']:.4f}", f"{scores['recall']:.4f}", f"{scores['f1']:.4f}",
                                  str(scores["support"])], (split, name)
    # One row of the evaluations table per val_f1 line of the log, with its F1.
    logged = re.findall(r"step=(\d+) val_precision=\S+ val_recall=\S+ val_f1=([0-9.]+)", result.stdout)
    evaluations = [cells for name, cells in table_rows(root, "evaluations").items() if name != "evaluation"]
    assert [(cells[1], cells[4]) for cells in evaluations] == logged
    # The error breakdown accounts for every gold entity of the test set, as test_predictions.jsonl has them.
    breakdown = table_rows(root, "errors-test")
    gold = sum(len(json.loads(line)["entities"]) for line in open(opt_ml.output_data_dir / "test_predictions.jsonl"))
    assert sum(int(value) for value in breakdown["all"][:5]) == gold
    hyperparameters = table_rows(root, "hyperparameters")
    assert hyperparameters["lstm_units"] == ["32"] and hyperparameters["learning_rate"] == ["0.001"]
    assert {"reading the data", "training", "final evaluation", "writing the model"} <= set(table_rows(root, "phases"))
    assert "no pretrained weights" in table_rows(root, "provenance")["encoder"][0]
    assert root.find(".//img[@class='curves']") is not None


def test_cli_evaluate_writes_the_page_with_the_scores_it_prints(trained_job, tmp_path: Path) -> None:
    opt_ml, _ = trained_job
    page, output = tmp_path / "evaluation.html", tmp_path / "evaluation.json"
    result = subprocess.run(
        [sys.executable, "-m", "albert_ner", "evaluate", "--model-dir", str(opt_ml.model_dir),
         str(SAMPLE / "test.txt"), "--output", str(output), "--report", str(page)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    saved = json.loads(output.read_text())["entity_level_strict"]["micro_avg"]
    rows = table_rows(parse(page.read_text(encoding="utf-8")), "scores-evaluated")
    assert rows["micro avg"] == [f"{saved['precision']:.4f}", f"{saved['recall']:.4f}", f"{saved['f1']:.4f}",
                                 str(saved["support"])]


# ------------------------------------------------------------------------------ a real browser
def chromium() -> str:
    """Debian's Chromium (scripts/setup.sh installs it as root); CI sets ALBERT_NER_REQUIRE_BROWSER=1 so that a
    missing browser fails there instead of skipping."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("ALBERT_NER_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install -y chromium; scripts/setup.sh does it as root)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def render(page: Path, png: Path, height: int = 3000) -> list[str]:
    """Screenshot ``page`` with headless Chromium, every host name unresolvable; return its console messages."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={png.parent / 'chromium-profile'}",
         f"--window-size=1280,{height}", f"--screenshot={png}", "--enable-logging=stderr", "--v=1",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and png.is_file(), result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def test_console_messages_are_caught(tmp_path: Path) -> None:
    """The check below would see a failing page: a console error here is reported."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><title>c</title><script>console.error("control message")</script>',
                    encoding="utf-8")
    messages = render(page, tmp_path / "control.png", height=200)
    assert any("control message" in message for message in messages), messages


def test_chromium_renders_the_trained_page_with_its_plots_and_no_console_errors(trained_job, tmp_path: Path) -> None:
    opt_ml, _ = trained_job
    png = tmp_path / "report.png"
    assert render(opt_ml.output_data_dir / "report.html", png) == []
    with Image.open(png) as image:
        pixels = image.convert("RGB")
        assert pixels.size == (1280, 3000)
        colours = {colour for _, colour in pixels.getcolors(maxcolors=1 << 20)}
    # The loss curve's blue (the inline SVG was drawn) and the "correct" bar's green (the page's CSS).
    assert (0x1F, 0x77, 0xB4) in colours and (0x4D, 0xAF, 0x4A) in colours
