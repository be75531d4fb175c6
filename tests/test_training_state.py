"""Checkpoints of the training loop: what is saved, what is skipped, what is refused."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.training_state import Progress, TrainingState


def model_and_state(directory, lstm_units: int = 8, keep: int = 2) -> tuple[AlbertTagger, TrainingState]:
    config = AlbertConfig(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                          family="brightmart")
    model = AlbertTagger(config, 5, cls_id=2, sep_id=3, pad_id=0, lstm_units=lstm_units)
    model(np.ones((1, 3), np.int32), np.array([3], np.int32))
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.build(model.trainable_variables)
    return model, TrainingState(directory, model, [optimizer], tf.Variable(1.0), keep=keep)


def test_every_variable_round_trips_including_nested_layers_and_rng_state(tmp_path) -> None:
    model, state = model_and_state(tmp_path)
    saved = [variable.numpy().copy() for variable in model.variables]
    assert any("seed_generator" in variable.path for variable in model.variables)
    assert any("bilstm" in variable.path for variable in model.variables)
    state.save(Progress(epoch=2, next_batch=7, step=50, best_f1=0.5, evaluations_since_best=1))
    for variable in model.variables:
        variable.assign(tf.zeros_like(variable))
    progress = state.restore()
    assert progress == Progress(epoch=2, next_batch=7, step=50, best_f1=0.5, evaluations_since_best=1)
    for before, variable in zip(saved, model.variables, strict=True):
        np.testing.assert_array_equal(before, variable.numpy())


def test_unreadable_newest_checkpoint_is_skipped_with_a_warning(tmp_path, caplog) -> None:
    _, state = model_and_state(tmp_path)
    state.save(Progress(step=10))
    newest = state.save(Progress(step=20))
    data_file = next(tmp_path.glob("ckpt-20.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        progress = state.restore()
    assert progress.step == 10
    assert f"skipping checkpoint {newest}" in caplog.text


def test_checkpoint_of_another_model_is_refused_not_overwritten(tmp_path) -> None:
    _, state = model_and_state(tmp_path, lstm_units=8)
    state.save(Progress(step=10))
    _, other = model_and_state(tmp_path, lstm_units=4)
    with pytest.raises(CheckpointError, match=r"ckpt-10: this checkpoint does not fit the model"):
        other.restore()


def test_old_checkpoints_are_pruned_and_best_weights_kept(tmp_path) -> None:
    model, state = model_and_state(tmp_path, keep=2)
    for step in (10, 20, 30):
        state.save(Progress(step=step))
    assert sorted(path.name for path in tmp_path.glob("ckpt-*.index")) == ["ckpt-20.index", "ckpt-30.index"]
    assert state.load_best_weights() is None
    state.save_best_weights(model.get_weights())
    for saved, current in zip(state.load_best_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, current)


def test_a_corrupt_state_file_resumes_from_the_newest_checkpoint_on_disk(tmp_path, caplog) -> None:
    """The ``checkpoint`` state file cut to 20 bytes made TensorFlow list no checkpoint: the job restarted at
    step 0 and overwrote the intact ones."""
    model, state = model_and_state(tmp_path, keep=3)
    for step in (10, 20):
        state.save(Progress(epoch=0, next_batch=step, step=step, best_f1=0.1, evaluations_since_best=0))
    state_file = tmp_path / "checkpoint"
    state_file.write_bytes(state_file.read_bytes()[:20])
    with caplog.at_level(logging.WARNING):
        progress = model_and_state(tmp_path, keep=3)[1].restore()
    assert progress is not None and progress.step == 20
    assert "lists no checkpoint" in caplog.text


def test_checkpoints_none_of_which_can_be_read_are_not_started_over_on(tmp_path) -> None:
    _, state = model_and_state(tmp_path)
    path = state.save(Progress(epoch=0, next_batch=5, step=5, best_f1=0.1, evaluations_since_best=0))
    data = next(tmp_path.glob("ckpt-5.data-*"))
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(CheckpointError, match=r"none of its 1 checkpoint\(s\) can be read"):
        model_and_state(tmp_path)[1].restore()
    assert path.endswith("ckpt-5")
