"""The job's report as one HTML page people look at: scores, curves, where the model goes wrong, the setup.

The page is one self-contained file (``output/data/report.html``, so it travels in ``output.tar.gz``): its
CSS is inline, its plots are SVG data URIs drawn by matplotlib, and it holds no script, so it opens from
a download with no network. Every number comes from the objects that wrote the text reports (the
:class:`~albert_ner.evaluation.EvaluationReport` of each split, with the predictions it was computed
from), and every piece of user text (sentences, entity types, paths) goes through Jinja2's autoescaping.

Plots use matplotlib's object-oriented ``Figure`` (no pyplot, so no GUI backend is ever chosen: SVG is
written by matplotlib's own SVG backend, PNG would go through Agg). They hold only numbers and English
labels, so no CJK font is needed where the job runs.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
from matplotlib.figure import Figure

from albert_ner.data_summary import SplitSummary
from albert_ner.error_analysis import NO_ENTITY, OUTCOMES, ErrorBreakdown, SentenceOutcomes, analyse_errors
from albert_ner.evaluation import EvaluatedSplit
from albert_ner.files import write_text_atomically
from albert_ner.sentences import Entity
from albert_ner.training_history import TrainingHistory

REPORT_PAGE = "report.html"
#: How many of the sentences with the most errors the page shows.
WORST_SENTENCES = 50
_PALETTE = ("#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#fb9a99", "#ffff99", "#8dd3c7", "#bebada",
            "#fccde5", "#d9d9d9")
_OUTCOME_COLOURS = {"correct": "#4daf4a", "wrong_type": "#984ea3", "wrong_boundary": "#ff7f00",
                    "wrong_boundary_and_type": "#a65628", "missed": "#e41a1c", "spurious": "#377eb8"}
_VERSIONED = ("albert-ner", "tensorflow", "keras", "numpy", "seqeval", "scikit-learn", "matplotlib", "jinja2")


@dataclass
class ReportPage:
    """Everything the page shows. ``history`` and ``hyperparameters`` are absent for ``albert-ner evaluate``,
    which scores a saved model; ``job`` and ``provenance`` are label -> text in the order given."""

    title: str
    splits: list[EvaluatedSplit]
    summaries: list[SplitSummary]
    history: TrainingHistory | None = None
    hyperparameters: Mapping[str, Any] | None = None
    job: Mapping[str, str] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)


class _Piece(NamedTuple):
    """A run of characters on a highlighted line: inside one entity (its type, palette index) or outside."""

    entity_type: str | None
    colour: int
    characters: list[tuple[str, bool]]  # (character, whether gold and predicted tags differ there)


def write_report_page(path: Path, page: ReportPage) -> None:
    write_text_atomically(path, render_report_page(page))


def render_report_page(page: ReportPage) -> str:
    breakdowns = {split.name: analyse_errors(split.sentences, split.predicted) for split in page.splits}
    types = sorted({name for split in page.splits for name in split.report.per_type}
                   | {name for breakdown in breakdowns.values() for name in breakdown.types}
                   | {name for summary in page.summaries for name in summary.entities})
    colours = {name: index % len(_PALETTE) for index, name in enumerate(types)}
    # The last split shown is the one whose sentences are listed: test when the job has one.
    listed = page.splits[-1] if page.splits else None
    worst = breakdowns[listed.name].worst_sentences(WORST_SENTENCES) if listed else []
    environment = jinja2.Environment(loader=jinja2.PackageLoader("albert_ner", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=True, lstrip_blocks=True)
    template = environment.get_template("report.html.j2")
    return template.render(
        page=page, types=types, colours=colours, palette=_PALETTE, outcomes=OUTCOMES,
        outcome_colours=_OUTCOME_COLOURS, no_entity=NO_ENTITY, breakdowns=breakdowns, listed=listed,
        worst=[(outcome, _highlighted(outcome, colours)) for outcome in worst],
        curves=_curves_svg(page.history) if page.history and page.history.log_points else None,
        versions=_versions(), generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        hyperparameters={key: json.dumps(value, ensure_ascii=False)
                         for key, value in (page.hyperparameters or {}).items()},
        confusion_axes=_confusion_axes, outcome_label=_outcome_label)


def _versions() -> dict[str, str]:
    """Python and the libraries whose versions decide the numbers on the page."""
    found = {"Python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _outcome_label(kind: str) -> str:
    return kind.replace("_", " ")


def _confusion_axes(breakdown: ErrorBreakdown) -> list[str]:
    return [*breakdown.types, NO_ENTITY]


def _highlighted(outcome: SentenceOutcomes, colours: Mapping[str, int]) -> dict[str, list[_Piece]]:
    return {"gold": _pieces(outcome.sentence.tokens, outcome.sentence.entities, outcome.differing, colours),
            "predicted": _pieces(outcome.sentence.tokens, outcome.predicted, outcome.differing, colours)}


def _pieces(tokens: Sequence[str], entities: Sequence[Entity], differing: frozenset[int],
            colours: Mapping[str, int]) -> list[_Piece]:
    pieces, position = [], 0
    for entity in sorted(entities):
        if entity.start > position:
            pieces.append(_Piece(None, 0, _characters(tokens, position, entity.start, differing)))
        pieces.append(_Piece(entity.type, colours[entity.type],
                             _characters(tokens, entity.start, entity.end, differing)))
        position = entity.end
    if position < len(tokens):
        pieces.append(_Piece(None, 0, _characters(tokens, position, len(tokens), differing)))
    return pieces


def _characters(tokens: Sequence[str], start: int, end: int, differing: frozenset[int]) -> list[tuple[str, bool]]:
    return [(tokens[position], position in differing) for position in range(start, end)]


def _curves_svg(history: TrainingHistory) -> str:
    """Loss, learning rate, validation F1 and throughput over steps, as an SVG data URI."""
    figure = Figure(figsize=(11, 6.2), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True)
    steps = [point.step for point in history.log_points]
    series = [
        (axes[0, 0], "training loss (mean since the previous log line)",
         [point.train_loss for point in history.log_points], "#1f77b4"),
        (axes[0, 1], "encoder learning rate", [point.learning_rate for point in history.log_points], "#ff7f0e"),
        (axes[1, 1], "throughput (sentences/s, training steps only)",
         [point.sentences_per_sec for point in history.log_points], "#2ca02c"),
    ]
    for axis, title, values, colour in series:
        axis.plot(steps, values, color=colour, linewidth=1.4)
        axis.set_title(title, fontsize=10)
    if min(point.train_loss for point in history.log_points) > 0:
        axes[0, 0].set_yscale("log")  # the loss falls by orders of magnitude; a linear axis hides the tail
    f1_axis = axes[1, 0]
    evaluations = history.evaluations
    f1_axis.plot([point.step for point in evaluations], [point.f1 for point in evaluations], marker="o",
                 color="#d62728", linewidth=1.4, markersize=4)
    if evaluations:
        best = max(evaluations, key=lambda point: point.f1)
        f1_axis.annotate(f"best {best.f1:.4f}", (best.step, best.f1), textcoords="offset points",
                         xytext=(0, -14), ha="center", fontsize=9)
    f1_axis.set_title("validation F1 (strict, micro) per evaluation", fontsize=10)
    for axis in axes.flat:
        axis.grid(alpha=0.3)
        for step in history.resumed_at:
            axis.axvline(step, color="#555555", linestyle="--", linewidth=1)
    for axis in axes[1]:
        axis.set_xlabel("step")
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")
