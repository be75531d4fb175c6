"""The training loop's decisions, seen from outside: when it evaluates, when it stops early, which
weights it keeps, and how it holds validation data out when no `validation` channel is given."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.data import read_data_file
from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import DataError
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.prediction import Predictor
from albert_ner.sentences import Sentence
from albert_ner.tag_schemes import entities_to_tags
from albert_ner.tokenization import normalize_token
from albert_ner.training import prepare_data
from albert_ner.training_state import BEST_WEIGHTS_FILE
from conftest import SAMPLE, TINY_HYPERPARAMETERS, OptMl
from test_train_entrypoint import METRIC_LINE

# Validation sentences without a single entity: strict F1 is 0 whatever the model predicts, so the
# first evaluation is the best one and no later one can beat it (best F1 must be strictly exceeded).
NO_ENTITIES = "".join(json.dumps({"text": text, "entities": []}, ensure_ascii=False) + "\n"
                      for text in ("今天天气很好。", "我们明天去吃饭吧。"))


def first_sentences(count: int) -> str:
    """The first ``count`` sentences of the sample training file, in its CoNLL form."""
    blocks = SAMPLE.joinpath("train.txt").read_text(encoding="utf-8").strip().split("\n\n")
    assert len(blocks) >= count
    return "\n\n".join(blocks[:count]) + "\n"


def evaluations(stdout: str) -> list[tuple[int, int, float]]:
    """(epoch, step, val_f1) of each evaluation line."""
    return [(int(epoch), int(step), float(f1)) for epoch, step, _, _, f1, _ in METRIC_LINE.findall(stdout)]


def steps_per_epoch(stdout: str) -> int:
    return int(re.search(r"(\d+) steps per epoch", stdout).group(1))


def checkpoint_weights(prefix: Path, model: keras.Model) -> list[np.ndarray]:
    """The weights of ``model`` (in ``get_weights()`` order) as a training checkpoint holds them.

    TrainingState saves ``model.variables`` by position; they include the dropout layers' seed states,
    which ``get_weights()`` leaves out, so the two lists are matched by variable path.
    """
    reader = tf.train.load_checkpoint(str(prefix))
    saved = {variable.path: reader.get_tensor(f"model/v{index:05d}/.ATTRIBUTES/VARIABLE_VALUE")
             for index, variable in enumerate(model.variables)}
    return [saved[weight.path] for weight in model.weights]


def test_early_stopping_ends_the_job_and_the_best_weights_are_the_model(opt_ml: OptMl) -> None:
    opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "epochs": "20", "eval_every_steps": "1",
                                  "early_stopping_patience": "2", "warmup_proportion": "0"})
    opt_ml.add_channel("training", contents={"train.txt": first_sentences(48)})
    opt_ml.add_channel("validation", contents={"validation.jsonl": NO_ENTITIES})
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not opt_ml.failure.exists()

    # Best at the first evaluation, then two without a better F1: patience 2 stops at step 3 of 80.
    assert re.search(r"\b80 steps in all", result.stdout)
    assert evaluations(result.stdout) == [(1, 1, 0.0), (1, 2, 0.0), (1, 3, 0.0)]
    assert re.search(r"early stopping: no better validation F1 in 2 evaluations \(best 0\.0000\)", result.stdout)
    assert re.search(r"training finished in [0-9.]+ s \(3 steps\)", result.stdout)

    # Stopping early still writes the model and its reports.
    assert {"model.weights.h5", "model_config.json", "label_map.json", "vocab.txt", "validation_report.json",
            "validation_report.txt"} <= {path.name for path in opt_ml.model_dir.iterdir()}
    assert (opt_ml.output_data_dir / "validation_report.json").is_file()

    # The model is the first evaluation's weights (kept in best_weights.npz), not the last step's, which
    # the checkpoint saved at the stop holds.
    checkpoints = opt_ml.base / "checkpoints"
    with np.load(checkpoints / BEST_WEIGHTS_FILE) as archive:
        best = [archive[f"arr_{index}"] for index in range(len(archive.files))]
    tagger = Predictor.load(opt_ml.model_dir).model
    model, last = tagger.get_weights(), checkpoint_weights(checkpoints / "ckpt-3", tagger)
    assert [weights.shape for weights in model] == [weights.shape for weights in best] == \
        [weights.shape for weights in last]
    for saved, kept in zip(model, best, strict=True):
        np.testing.assert_array_equal(saved, kept)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(model, last, strict=True)) > 1e-4


def test_eval_every_steps_adds_evaluations_between_epoch_ends(opt_ml: OptMl) -> None:
    every, max_steps = 2, 7
    opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "epochs": "3", "max_steps": str(max_steps),
                                  "eval_every_steps": str(every), "early_stopping_patience": "0"})
    opt_ml.add_channel("training", contents={"train.txt": first_sentences(40)})
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    per_epoch = steps_per_epoch(result.stdout)
    assert per_epoch == 3  # odd, so that epoch ends and every-2-steps evaluations interleave
    # Every 2 steps, at each epoch end (once where both fall on one step) and at max_steps mid-epoch.
    assert [(epoch, step) for epoch, step, _ in evaluations(result.stdout)] == [
        (1, 2), (1, 3), (2, 4), (2, 6), (3, 7)]
    assert all(math.ceil(step / per_epoch) == epoch for epoch, step, _ in evaluations(result.stdout))

    # The model written is the best evaluation's: its validation report repeats the best F1 logged.
    best = max(f1 for _, _, f1 in evaluations(result.stdout))
    report = json.loads((opt_ml.model_dir / "validation_report.json").read_text())
    assert report["entity_level_strict"]["micro_avg"]["f1"] == pytest.approx(best, abs=5e-5)
    assert f"best validation F1 {best:.4f}" in result.stdout


def contents(sentences: list[Sentence]) -> set[tuple]:
    """Sentences by what they say, not by the file and line they were read from."""
    return {(sentence.tokens, sentence.entities) for sentence in sentences}


def distinct_sample_sentences(count: int) -> list[Sentence]:
    unique: dict[tuple, Sentence] = {}
    for sentence in read_data_file(SAMPLE / "train.txt")[0]:
        unique.setdefault((sentence.tokens, sentence.entities), sentence)
    assert len(unique) >= count
    return list(unique.values())[:count]


def held_out_job(opt_ml: OptMl, sentences: list[Sentence]) -> TrainingEnvironment:
    """A job with only a training channel holding ``sentences``, written back in CoNLL form."""
    blocks = []
    for sentence in sentences:
        tags = entities_to_tags(len(sentence.tokens), sentence.entities, "bio")
        blocks.append("\n".join(f"{token} {tag}" for token, tag in zip(sentence.tokens, tags, strict=True)))
    opt_ml.add_channel("training", contents={"train.txt": "\n\n".join(blocks) + "\n"})
    return TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(opt_ml.base)})


def test_validation_split_holds_out_a_seeded_disjoint_share(opt_ml: OptMl, caplog) -> None:
    sentences = distinct_sample_sentences(50)
    env = held_out_job(opt_ml, sentences)
    caplog.set_level(logging.INFO, logger="albert_ner.training")
    data = prepare_data(Hyperparameters(validation_split=0.2, seed=7), env)

    assert "validation: 10 sentences held out of training (validation_split=0.2, seed=7)" in caplog.text
    assert len(data.validation) == 10 and len(data.train) == 40
    train, held_out = contents(data.train), contents(data.validation)
    assert train.isdisjoint(held_out) and train | held_out == contents(sentences)
    # The vocabulary comes from the sentences trained on, not from the held-out ones.
    def characters(part: list[Sentence]) -> set[str]:
        return {normalize_token(token) for sentence in part for token in sentence.tokens}

    held_out_only = characters(data.validation) - characters(data.train)
    assert held_out_only and not any(token in data.tokenizer.vocab for token in held_out_only)

    again = prepare_data(Hyperparameters(validation_split=0.2, seed=7), env)
    assert again.validation == data.validation and again.train == data.train
    other = prepare_data(Hyperparameters(validation_split=0.2, seed=8), env)
    assert contents(other.validation) != held_out


def test_validation_split_of_a_single_sentence_asks_for_a_validation_channel(opt_ml: OptMl) -> None:
    env = held_out_job(opt_ml, distinct_sample_sentences(1))
    with pytest.raises(DataError, match=r"only 1 training sentence\(s\): too few .* add a `validation` channel"):
        prepare_data(Hyperparameters(), env)
