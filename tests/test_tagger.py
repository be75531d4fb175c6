"""The task model: [CLS]/[SEP] inside, one row of scores per character, padding that changes nothing."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.tag_schemes import LabelMap

CONFIG = AlbertConfig(vocab_size=50, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=40, family="brightmart")
LABELS = LabelMap(["LOC", "PER"], scheme="bio")


def tagger(**kwargs) -> AlbertTagger:
    tf.keras.utils.set_random_seed(3)
    return AlbertTagger(CONFIG, len(LABELS), cls_id=2, sep_id=3, pad_id=0,
                        allowed=LABELS.allowed_transitions(), **kwargs)


@pytest.mark.parametrize("options", [{}, {"lstm_units": 0}, {"use_crf": False}])
def test_scores_per_character_do_not_depend_on_padding(options: dict) -> None:
    model = tagger(lstm_units=8, **options) if "lstm_units" not in options else tagger(**options)
    ids = np.array([[10, 11, 12, 13, 14], [20, 21, 22, 0, 0]], dtype=np.int32)
    lengths = np.array([5, 3], dtype=np.int32)
    batch_scores = model(ids, lengths).numpy()
    alone = model(ids[1:, :3], lengths[1:]).numpy()
    assert batch_scores.shape == (2, 5, len(LABELS))
    np.testing.assert_allclose(batch_scores[1, :3], alone[0], atol=1e-5)


def test_cls_and_sep_wrap_the_characters() -> None:
    model = tagger(lstm_units=0)
    seen = {}
    original_call = model.encoder.call

    def spy(token_ids, padding_mask, training=False):
        seen["ids"], seen["mask"] = token_ids.numpy(), padding_mask.numpy()
        return original_call(token_ids, padding_mask, training=training)

    model.encoder.call = spy
    model(np.array([[10, 11, 12], [20, 0, 0]], np.int32), np.array([3, 1], np.int32))
    assert seen["ids"].tolist() == [[2, 10, 11, 12, 3], [2, 20, 3, 0, 0]]
    assert seen["mask"].tolist() == [[True] * 5, [True, True, True, False, False]]


def test_crf_decoding_never_breaks_the_scheme_and_loss_is_per_sentence() -> None:
    model = tagger(lstm_units=8)
    ids = np.random.default_rng(0).integers(5, 50, size=(4, 9)).astype(np.int32)
    lengths = np.array([9, 4, 1, 7], np.int32)
    scores = model(ids, lengths)
    decoded = model.decode(scores, lengths).numpy()
    start, transition, end = LABELS.allowed_transitions()
    for row, length in zip(decoded, lengths, strict=True):
        path = row[:length]
        assert start[path[0]] and end[path[-1]]
        assert all(transition[a, b] for a, b in itertools.pairwise(path))
        assert (row[length:] == 0).all()
    loss = model.per_example_loss(scores, np.zeros_like(ids), lengths).numpy()
    assert loss.shape == (4,) and (loss > 0).all()


def test_head_variables_exclude_the_encoder() -> None:
    model = tagger(lstm_units=8)
    model(np.ones((1, 2), np.int32), np.array([2], np.int32))
    head = {variable.path for variable in model.head_variables}
    assert head and not any("/albert/" in path for path in head)
    assert any("crf" in path for path in head) and any("bilstm" in path for path in head)
    assert len(head) + len(model.encoder.trainable_variables) == len(model.trainable_variables)


def test_config_round_trip_rebuilds_the_same_model() -> None:
    model = tagger(lstm_units=8)
    ids, lengths = np.array([[5, 6, 7]], np.int32), np.array([3], np.int32)
    expected = model(ids, lengths).numpy()
    clone = AlbertTagger(**model.get_config())
    clone(ids, lengths)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(ids, lengths).numpy(), expected, atol=1e-6)


def test_bilstm_recurrence_stays_float32_under_mixed_bfloat16() -> None:
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = tagger(lstm_units=8)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    ids, lengths = np.array([[5, 6, 7]], np.int32), np.array([3], np.int32)
    assert model(ids, lengths).dtype == tf.float32
    sequence = model.encoder(np.array([[2, 5, 6, 7, 3]], np.int32), np.ones((1, 5), bool))
    assert sequence.dtype == tf.bfloat16
    assert model.bilstm(sequence).dtype == tf.float32
    assert all(layer.compute_dtype == "float32" for layer in (model.bilstm.forward_layer,
                                                              model.bilstm.backward_layer))


def test_the_bilstm_without_a_mask_equals_the_masked_layer_at_every_character() -> None:
    """The tagger runs its BiLSTM unmasked (so that it converts to ONNX's LSTM operator): at every character
    the values must be the masked Bidirectional layer's, bit for bit, whatever the padding holds."""
    model = tagger(lstm_units=8)
    rng = np.random.default_rng(0)
    lengths = np.array([7, 1, 4, 0], np.int32)
    features = rng.normal(size=(4, 7, 12)).astype(np.float32)
    model.bilstm.build(features.shape)
    masked = model.bilstm(features, mask=tf.sequence_mask(lengths, 7)).numpy()
    unmasked = model._run_bilstm(tf.constant(features), tf.constant(lengths), training=False).numpy()
    valid = np.arange(7)[None, :] < lengths[:, None]
    np.testing.assert_array_equal(unmasked[valid], masked[valid])
    assert not np.array_equal(model.bilstm(features).numpy()[valid], masked[valid])  # the mask matters
