"""SageMaker Ground Truth named-entity output manifests (``output.manifest``, JSON Lines).

One line per labelled object::

    {"source": "李鹏在北京", "my-job": {"annotations": {"entities": [{"label": "PER", "startOffset": 0,
     "endOffset": 2}], "labels": [{"label": "PER"}]}}, "my-job-metadata": {"type": "groundtruth/text-span", ...}}

The label attribute (``my-job``) is named by whoever created the labelling job, so it is found by its shape
(``annotations.entities``), or named by the ``label_attribute`` hyperparameter when a line holds several
(chained jobs). ``endOffset`` is exclusive. Entities come unsorted, and the tool lets workers give one
span several labels, so overlaps are resolved by :func:`~albert_ner.readers.spans.resolve_overlaps`.
Objects the job could not label carry a ``failure-reason`` in their metadata instead of labels; they are
skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike
from albert_ner.readers.spans import Mention, ReadOptions, ReadReport, check_offset, check_type, located, sentence_from
from albert_ner.sentences import Sentence

FORMAT = "ground-truth"
NER_TASK_TYPE = "groundtruth/text-span"


def matches(record: Any) -> bool:
    return isinstance(record, dict) and ("source" in record or "source-ref" in record) and "text" not in record


def read_records(
    records: Iterable[tuple[int, Any]], path: PathLike, options: ReadOptions
) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport(scheme=FORMAT)
    sentences = []
    for line, record in records:
        sentence = read_record(record, path, line, options, report)
        if sentence is not None:
            sentences.append(sentence)
    return sentences, report


def read_record(record: Any, path: PathLike, line: int, options: ReadOptions, report: ReadReport) -> Sentence | None:
    """One manifest line as a sentence; None when the job could not label the object (counted)."""
    def fail(message: str) -> DataError:
        return DataError(message, path, line)

    if not matches(record):
        raise fail(f'expected a Ground Truth manifest line with "source", found {_keys(record)}')
    if "source" not in record:
        raise fail(f'"source-ref" {record["source-ref"]!r} points to an S3 object, not to text in the channel: '
                   'give the text itself under "source" (Ground Truth writes it so for text taken from a manifest)')
    attribute = _label_attribute(record, options, fail)
    if attribute is None:
        report.skipped["Ground Truth objects the labelling job failed to label"] += 1
        return None
    entities = record[attribute]["annotations"]["entities"]
    if not isinstance(entities, list):
        raise fail(f'"{attribute}.annotations.entities" must be a list, found {entities!r:.80}')
    mentions = []
    for index, entity in enumerate(entities):
        name = f"{attribute}.annotations.entities[{index}]"
        if not isinstance(entity, dict) or not {"startOffset", "endOffset", "label"} <= entity.keys():
            raise fail(f'{name}: expected {{"label", "startOffset", "endOffset"}}, found {entity!r:.80}')
        mentions.append(Mention(check_offset(entity["startOffset"], f"{name}.startOffset", fail),
                                check_offset(entity["endOffset"], f"{name}.endOffset", fail),
                                check_type(entity["label"], f"{name}.label", fail), name))
    return sentence_from(record["source"], mentions, located(path, line), options, report, fail)


def _label_attribute(record: dict[str, Any], options: ReadOptions, fail: Any) -> str | None:
    if options.label_attribute is not None:
        name = options.label_attribute
        if name not in record:
            if _failed(record, name):
                return None
            raise fail(f"no label attribute {name!r} (hyperparameter label_attribute) on this line; attributes "
                       f"found: {_keys(record)}")
        _check_task_type(record, name, fail)
        if not _is_ner(record[name]):
            raise fail(f'label attribute {name!r} holds no "annotations.entities": {record[name]!r:.120}')
        return name
    candidates = [key for key, value in record.items() if _is_ner(value)]
    if len(candidates) > 1:
        raise fail(f"several named-entity label attributes on this line ({', '.join(candidates)}): set the "
                   "hyperparameter label_attribute to the one to train on")
    if candidates:
        _check_task_type(record, candidates[0], fail)
        return candidates[0]
    for key, value in record.items():
        if key.endswith("-metadata") and isinstance(value, dict) and value.get("type") not in (None, NER_TASK_TYPE):
            raise fail(f"label attribute {key[:-len('-metadata')]!r} is of type {value['type']!r}, not named entity "
                       f"recognition ({NER_TASK_TYPE!r}): this manifest comes from another kind of labelling job")
    if any(_failed(record, key[:-len("-metadata")]) for key in record if key.endswith("-metadata")):
        return None
    raise fail(f'no named-entity label attribute (an object with "annotations": {{"entities": [...]}}) on this '
               f"line; attributes found: {_keys(record)}")


def _is_ner(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("annotations"), dict)
            and "entities" in value["annotations"])


def _check_task_type(record: dict[str, Any], attribute: str, fail: Any) -> None:
    metadata = record.get(f"{attribute}-metadata")
    task_type = metadata.get("type") if isinstance(metadata, dict) else None
    if task_type not in (None, NER_TASK_TYPE):
        raise fail(f"label attribute {attribute!r} is of type {task_type!r}, not named entity recognition "
                   f"({NER_TASK_TYPE!r})")


def _failed(record: dict[str, Any], attribute: str) -> bool:
    metadata = record.get(f"{attribute}-metadata")
    return isinstance(metadata, dict) and "failure-reason" in metadata


def _keys(record: Any) -> str:
    return ", ".join(record) if isinstance(record, dict) and record else f"{record!r:.80}"
