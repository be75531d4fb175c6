"""`train` run as SageMaker runs it on labels in the tools' own formats: a mixed channel, and Pipe mode."""

from __future__ import annotations

import json
import os
import re
import threading

from albert_ner.readers.conll import read_conll
from albert_ner.readers.recordio import frame
from conftest import SAMPLE, TINY_HYPERPARAMETERS, OptMl
from format_writers import (
    ground_truth_line,
    write_brat,
    write_cluener,
    write_doccano,
    write_ground_truth,
    write_label_studio,
)

QUICK = {**TINY_HYPERPARAMETERS, "epochs": "1", "max_steps": "4", "eval_batch_size": "64"}


def test_a_channel_mixing_every_format_trains(opt_ml: OptMl) -> None:
    sentences, _ = read_conll(SAMPLE / "train.txt")
    channel = opt_ml.add_channel("training")
    write_ground_truth(channel / "output.manifest", sentences[:100])
    write_cluener(channel / "cluener.json", sentences[100:200])
    write_label_studio(channel / "project-1-at-2024-01-03.json", sentences[200:300])
    write_doccano(channel / "admin.jsonl", sentences[300:400])
    write_brat(channel, "news", sentences[400:500])
    (channel / "annotation.conf").write_text("[entities]\nPER\nLOC\nORG\n产品\n[relations]\n[events]\n"
                                             "[attributes]\n", encoding="utf-8")
    (channel / "rest.conll").write_text((SAMPLE / "train.txt").read_text(encoding="utf-8").split("\n\n", 500)[-1],
                                        encoding="utf-8")
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    opt_ml.write_hyperparameters(QUICK)
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    entities = sum(len(s.entities) for s in sentences)
    line = re.search(r"channel training: (\d+) sentences with (\d+) entities from 8 file\(s\), format (\S+); "
                     r"(.*)", result.stdout)
    assert line, result.stdout[-3000:]
    assert (int(line[1]), int(line[2])) == (len(sentences), entities)
    assert line[3] == "bio+brat+cluener+doccano+ground-truth+label-studio"
    assert line[4] == ("1 brat configuration files skipped; 1 brat notes skipped; 100 cancelled Label Studio "
                       "annotations skipped; 100 older Label Studio annotations (the most recent one per task is "
                       "used) skipped")
    assert (opt_ml.model_dir / "model.weights.h5").is_file()


def test_pipe_mode_augmented_manifest_is_read_from_the_fifo(opt_ml: OptMl) -> None:
    """SageMaker streams the manifest's AttributeNames ["source", "ner-job"] as RecordIO records into
    input/data/training_0; a writer thread plays SageMaker while `train` reads."""
    sentences, _ = read_conll(SAMPLE / "train.txt")
    opt_ml.write_hyperparameters(QUICK)
    config = opt_ml.base / "input" / "config"
    (config / "inputdataconfig.json").write_text(json.dumps({
        "training": {"TrainingInputMode": "Pipe", "S3DistributionType": "FullyReplicated",
                     "RecordWrapperType": "RecordIO"},
        "validation": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}}), encoding="utf-8")
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    fifo = opt_ml.base / "input" / "data" / "training_0"
    os.mkfifo(fifo)
    stream = b"".join(frame(text.encode("utf-8")) for sentence in sentences for text in (
        json.dumps("".join(sentence.tokens), ensure_ascii=False) if sentence.tokens[0] == "据" else
        "".join(sentence.tokens),  # the source comes as plain text or as a JSON string
        json.dumps(ground_truth_line(sentence)["ner-job"], ensure_ascii=False)))

    def play_sagemaker() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(stream)

    writer = threading.Thread(target=play_sagemaker, daemon=True)
    writer.start()
    result = opt_ml.run_train()
    writer.join(timeout=10)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    entities = sum(len(s.entities) for s in sentences)
    assert f"channel training: {len(sentences)} sentences with {entities} entities from 1 file(s), format " \
           "ground-truth" in result.stdout
