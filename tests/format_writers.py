"""Write sentences in each labelling tool's published export format, for the end-to-end reader tests.

Each writer follows its tool's documentation (see data/README.md), including what makes the format
awkward: Ground Truth's unsorted entities, CLUENER's inclusive ends, Label Studio's cancelled and older
annotations, doccano's 1.3-1.6 ``data`` key, brat's documents cut into sentences by the reader.
"""

import json
from pathlib import Path


def text_of(sentence) -> str:
    return "".join(sentence.tokens)


def ground_truth_line(sentence, attribute: str = "ner-job") -> dict:
    entities = [{"label": e.type, "startOffset": e.start, "endOffset": e.end} for e in reversed(sentence.entities)]
    return {"source": text_of(sentence),
            attribute: {"annotations": {"entities": entities,
                                        "labels": [{"label": t} for t in sorted({e.type for e in sentence.entities})]}},
            f"{attribute}-metadata": {"entities": [{"confidence": 0.91}] * len(entities),
                                      "job-name": f"labeling-job/{attribute}", "type": "groundtruth/text-span",
                                      "human-annotated": "yes", "creation-date": "2024-05-14T21:45:27.175903"}}


def write_ground_truth(path: Path, sentences) -> None:
    path.write_text("".join(json.dumps(ground_truth_line(s), ensure_ascii=False) + "\n" for s in sentences),
                    encoding="utf-8")


def write_cluener(path: Path, sentences) -> None:
    lines = []
    for sentence in sentences:
        label: dict = {}
        for e in sentence.entities:
            label.setdefault(e.type, {}).setdefault(text_of(sentence)[e.start:e.end], []).append([e.start, e.end - 1])
        lines.append(json.dumps({"text": text_of(sentence), "label": label}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_label_studio(path: Path, sentences) -> None:
    def annotation(number, sentence, created, cancelled=False):
        result = [{"value": {"start": e.start, "end": e.end, "text": text_of(sentence)[e.start:e.end],
                             "labels": [e.type]}, "id": f"{number}-{i}", "from_name": "label", "to_name": "text",
                   "type": "labels", "origin": "manual"} for i, e in enumerate(sentence.entities)]
        return {"id": number, "completed_by": 1, "result": result, "was_cancelled": cancelled,
                "ground_truth": False, "created_at": created, "updated_at": created, "lead_time": 4.2}

    tasks = []
    for number, sentence in enumerate(sentences, 1):
        older = type(sentence)(sentence.tokens, sentence.entities[:1])
        tasks.append({"id": number, "data": {"text": text_of(sentence)}, "meta": {}, "predictions": [],
                      "annotations": [annotation(3 * number, older, "2024-01-01T10:00:00.000000Z"),
                                      annotation(3 * number + 1, sentence, "2024-01-02T10:00:00.000000Z"),
                                      annotation(3 * number + 2, older, "2024-01-03T10:00:00.000000Z", True)]})
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=2), encoding="utf-8")


def write_doccano(path: Path, sentences) -> None:
    path.write_text("".join(json.dumps({"id": i, "data": text_of(s), "label": [list(e) for e in s.entities]},
                                       ensure_ascii=False) + "\n" for i, s in enumerate(sentences, 1)),
                    encoding="utf-8")


def write_brat(directory: Path, name: str, sentences) -> None:
    """One document: sentences joined alternately by a line break and by nothing."""
    text, lines = "", []
    for index, sentence in enumerate(sentences):
        for e in sentence.entities:
            lines.append(f"T{len(lines) + 1}\t{e.type} {len(text) + e.start} {len(text) + e.end}\t"
                         f"{text_of(sentence)[e.start:e.end]}")
        text += text_of(sentence) + ("\n" if index % 2 else "")
    lines.append("#1\tAnnotatorNotes T1\tchecked")
    (directory / f"{name}.txt").write_text(text, encoding="utf-8")
    (directory / f"{name}.ann").write_text("\n".join(lines) + "\n", encoding="utf-8")
