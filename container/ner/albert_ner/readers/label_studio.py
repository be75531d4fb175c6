"""Label Studio exports of the named-entity template: the full JSON export and JSON-MIN.

The full export is a list of tasks, ``{"data": {"text": ...}, "annotations": [{"result": [{"type":
"labels", "from_name": "label", "value": {"start", "end", "text", "labels": ["PER"]}}]}]}`` (``completions``
in exports before 1.0). ``end`` is exclusive and ``text`` repeats the mention, so every span is checked.
Annotations marked ``was_cancelled`` (skipped by the annotator) are left out and counted; a task with
several annotations takes the most recent one (``updated_at``, else ``created_at``), counted; a task
with none is unlabelled and counted. Results of other kinds (relations, choices, text areas) are counted
and ignored.

JSON-MIN writes one record per annotation, the task's data fields plus the labels under the template's
``from_name`` (``label`` in the stock template) as ``{start, end, text, labels}``; its ``annotation_id``
tells it apart. Several records of one task are reduced to the most recent, like the full export.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike
from albert_ner.readers.spans import Mention, ReadOptions, ReadReport, check_offset, check_type, located, sentence_from
from albert_ner.sentences import Sentence

FORMAT = "label-studio"
_MIN_FIELDS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"}

Fail = Callable[[str], DataError]


def matches(record: Any) -> bool:
    return isinstance(record, dict) and (
        (isinstance(record.get("data"), dict) and ("annotations" in record or "completions" in record))
        or "annotation_id" in record
    )


def read_records(
    records: Iterable[tuple[int, Any]], path: PathLike, options: ReadOptions
) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport(scheme=FORMAT)
    sentences = []
    minimal: dict[Any, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for line, record in records:
        def fail(message: str, line: int = line) -> DataError:
            return DataError(message, path, line)

        if not matches(record):
            raise fail("expected a Label Studio task (\"data\" and \"annotations\") or JSON-MIN record "
                       f"(\"annotation_id\"), found {_keys(record)}")
        if "annotation_id" in record:
            minimal[record.get("id", ("line", line))].append((line, record))
            continue
        sentence = _read_task(record, path, line, options, report, fail)
        if sentence is not None:
            sentences.append(sentence)
    for versions in minimal.values():
        sentence = _read_minimal(versions, path, options, report)
        if sentence is not None:
            sentences.append(sentence)
    sentences.sort(key=lambda s: int(s.source.rsplit(":", 1)[1]))
    return sentences, report


def _read_task(record: dict[str, Any], path: PathLike, line: int, options: ReadOptions, report: ReadReport,
               fail: Fail) -> Sentence | None:
    key = "annotations" if "annotations" in record else "completions"
    annotations = record[key]
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise fail(f'"{key}" must be a list of annotation objects, found {annotations!r:.80}')
    kept = [a for a in annotations if not (a.get("was_cancelled") or a.get("skipped"))]
    report.skipped["cancelled Label Studio annotations"] += len(annotations) - len(kept)
    if not kept:
        report.skipped["Label Studio tasks without annotations"] += 1
        return None
    index = max(range(len(kept)), key=lambda i: (_time(kept[i]), i))
    if len(kept) > 1:
        report.skipped["older Label Studio annotations (the most recent one per task is used)"] += len(kept) - 1
    annotation = kept[index]
    results = annotation.get("result")
    if not isinstance(results, list):
        raise fail(f'{key}[{annotations.index(annotation)}].result must be a list, found {results!r:.80}')
    spans = []
    for number, result in enumerate(results):
        name = f"{key}[{annotations.index(annotation)}].result[{number}]"
        if isinstance(result, dict) and result.get("type", "labels") != "labels":
            report.skipped[f"Label Studio {result.get('type')} results"] += 1
            continue
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            raise fail(f'{name}: expected an object with a "value", found {result!r:.80}')
        spans.append((f"{name}.value", result["value"]))
    text = _task_text(record["data"], [value for _, value in spans], fail)
    return sentence_from(text, _mentions(spans, fail), located(path, line), options, report, fail)


def _read_minimal(versions: list[tuple[int, dict[str, Any]]], path: PathLike, options: ReadOptions,
                  report: ReadReport) -> Sentence | None:
    labelled = [(line, record) for line, record in versions if record.get("annotation_id") is not None]
    if not labelled:
        report.skipped["Label Studio tasks without annotations"] += 1
        return None
    if len(labelled) > 1:
        report.skipped["older Label Studio annotations (the most recent one per task is used)"] += len(labelled) - 1
    line, record = max(labelled, key=lambda item: (_time(item[1]), item[0]))

    def fail(message: str) -> DataError:
        return DataError(message, path, line)

    span_fields = [key for key, value in record.items()
                   if key not in _MIN_FIELDS and isinstance(value, list)
                   and all(isinstance(item, dict) and "labels" in item for item in value)]
    if len(span_fields) > 1:
        raise fail(f"several label fields ({', '.join(span_fields)}) in one JSON-MIN record: export one "
                   "labelling template's labels")
    spans = [(f"{span_fields[0]}[{i}]", value) for i, value in enumerate(record[span_fields[0]])] if span_fields else []
    data = {key: value for key, value in record.items() if key not in _MIN_FIELDS and key not in span_fields}
    text = _task_text(data, [value for _, value in spans], fail)
    return sentence_from(text, _mentions(spans, fail), located(path, line), options, report, fail)


def _mentions(spans: list[tuple[str, Any]], fail: Fail) -> list[Mention]:
    mentions = []
    for name, value in spans:
        if not isinstance(value, dict) or not {"start", "end", "labels"} <= value.keys():
            raise fail(f'{name}: expected {{"start", "end", "text", "labels"}}, found {value!r:.80}')
        labels = value["labels"]
        if not isinstance(labels, list) or len(labels) != 1:
            raise fail(f"{name}.labels: expected exactly one label per span, found {labels!r:.80}")
        text = value.get("text")
        if text is not None and not isinstance(text, str):
            raise fail(f"{name}.text must be a string, found {text!r:.80}")
        mentions.append(Mention(check_offset(value["start"], f"{name}.start", fail),
                                check_offset(value["end"], f"{name}.end", fail),
                                check_type(labels[0], f"{name}.labels[0]", fail), name, text))
    return mentions


def _task_text(data: dict[str, Any], values: list[Any], fail: Fail) -> str:
    """The task's text: ``data.text``, else the one string field, else the one the mentions fit."""
    strings = {key: value for key, value in data.items() if isinstance(value, str)}
    if "text" in strings:
        return strings["text"]
    if len(strings) == 1:
        return next(iter(strings.values()))
    fitting = [value for value in strings.values()
               if all(isinstance(v, dict) and isinstance(v.get("start"), int) and isinstance(v.get("end"), int)
                      and v.get("text") == value[v["start"]:v["end"]] for v in values)]
    if len(fitting) == 1 and values:
        return fitting[0]
    raise fail(f"cannot tell which data field holds the text: string fields {', '.join(strings) or 'none'}; "
               'name it "text"')


def _time(annotation: dict[str, Any]) -> str:
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


def _keys(record: Any) -> str:
    return ", ".join(record) if isinstance(record, dict) and record else f"{record!r:.80}"
