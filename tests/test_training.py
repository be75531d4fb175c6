"""Batching, encoding and the learning-rate schedule of the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from albert_ner.batching import EncodedExamples, batch_plan, drop_tokens
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.optimization import (
    OptimizerSettings,
    TrainStep,
    WarmupLinearDecay,
    averaged_weights,
    make_loss_scale,
    make_optimizers,
)
from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab


def test_batch_plan_covers_every_example_once_and_repeats_for_a_seed() -> None:
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    plan = batch_plan(lengths, 32, seed=7, epoch=1, group_by_length=True)
    assert sorted(np.concatenate(plan).tolist()) == list(range(1000))
    assert all(len(batch) <= 32 for batch in plan)
    again = batch_plan(lengths, 32, seed=7, epoch=1, group_by_length=True)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again, strict=True))
    other_epoch = batch_plan(lengths, 32, seed=7, epoch=2, group_by_length=True)
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other_epoch, strict=True))


def test_length_grouping_cuts_padding() -> None:
    lengths = np.random.default_rng(1).integers(5, 128, size=5000)

    def padded(plan) -> int:
        return sum(len(batch) * lengths[batch].max() for batch in plan)

    grouped = padded(batch_plan(lengths, 32, 0, 1, group_by_length=True))
    random_order = padded(batch_plan(lengths, 32, 0, 1, group_by_length=False))
    assert grouped < 0.7 * random_order
    assert grouped < 1.1 * lengths.sum()


def test_encoded_examples_store_ids_once_and_pad_batches() -> None:
    sentences = [Sentence(tuple("张伟在北京"), (Entity(0, 2, "PER"), Entity(3, 5, "LOC"))),
                 Sentence(tuple("好"), ())]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    label_map = LabelMap(["LOC", "PER"], scheme="bioes")
    examples = EncodedExamples(sentences, 126, CharTokenizer(vocab), label_map)
    assert examples.token_ids.shape == (6,) and len(examples) == 2
    token_ids, tag_ids, lengths, lexicon = examples.batch(np.array([1, 0]))
    assert lengths.tolist() == [1, 5] and token_ids.shape == (2, 5) and lexicon.shape == (2, 5, 0)
    assert token_ids[0, 1:].tolist() == [vocab.pad_id] * 4
    assert [label_map.tag(t) for t in tag_ids[1]] == ["B-PER", "E-PER", "O", "B-LOC", "E-LOC"]
    assert token_ids[1].tolist() == [vocab.id(char) for char in "张伟在北京"]


def test_drop_tokens_replaces_a_share_of_real_tokens_and_never_padding() -> None:
    lengths = np.array([2000, 500])
    token_ids = np.full((2, 2000), 7, dtype=np.int32)
    token_ids[1, 500:] = 0
    dropped = drop_tokens(token_ids, lengths, 0.2, unk_id=1, rng=np.random.default_rng(3))
    assert dropped.dtype == np.int32 and (token_ids[token_ids != 0] == 7).all()
    real = np.arange(2000) < lengths[:, None]
    assert set(np.unique(dropped[real]).tolist()) == {1, 7}
    assert (dropped[real] == 1).mean() == pytest.approx(0.2, abs=0.02)
    assert (dropped[~real] == 0).all()
    again = drop_tokens(token_ids, lengths, 0.2, unk_id=1, rng=np.random.default_rng(3))
    assert np.array_equal(dropped, again)


def test_warmup_then_linear_decay() -> None:
    schedule = WarmupLinearDecay(peak=1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])


@pytest.mark.parametrize("ema_momentum", [None, 0.8])
def test_evaluation_sees_the_moving_average_and_training_goes_on_from_the_trained_weights(
        ema_momentum: float | None) -> None:
    tf.keras.utils.set_random_seed(0)
    labels = LabelMap(["PER"], scheme="bio")
    config = AlbertConfig(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=20,
                          family="brightmart")
    model = AlbertTagger(config, len(labels), cls_id=2, sep_id=3, pad_id=0, lstm_units=4,
                         allowed=labels.allowed_transitions())
    build_model(model, pad_id=0)
    hp = Hyperparameters(ema_momentum=ema_momentum, learning_rate=1e-2, head_learning_rate=1e-2,
                         warmup_proportion=0.0)
    optimizers = make_optimizers(model, OptimizerSettings.of(hp, pretrained=False), total_steps=100)
    step = TrainStep(model, optimizers, make_loss_scale("float32"), tf.distribute.get_strategy(),
                     clip_norm=1.0, precision="float32")
    variables = model.encoder.trainable_variables + model.head_variables
    rng = np.random.default_rng(0)
    # O and B-PER only: every path of them is allowed, so each step has a finite loss and moves.
    tag_choices = [labels.tags.index("O"), labels.tags.index("B-PER")]
    average = None
    for _ in range(6):
        step(rng.integers(5, 30, (4, 6)).astype(np.int32), rng.choice(tag_choices, (4, 6)).astype(np.int32),
             np.full(4, 6, np.int32), np.zeros((4, 6, 0), np.uint8))
        trained = [variable.numpy() for variable in variables]
        # Keras' rule: the first step copies the weights, each later one moves the average towards them.
        momentum = 0.0 if average is None else ema_momentum or 0.0
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average or trained, trained, strict=True)]
    with averaged_weights(model, *optimizers):
        inside = [variable.numpy() for variable in variables]
    for variable, weights in zip(variables, trained, strict=True):
        np.testing.assert_array_equal(variable.numpy(), weights)
    if ema_momentum is None:
        assert all(np.array_equal(a, b) for a, b in zip(inside, trained, strict=True))
    else:
        for seen, expected in zip(inside, average, strict=True):
            np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-7)
        assert not np.allclose(inside[0], trained[0])


def test_every_epoch_takes_its_own_batch_plan_from_any_start() -> None:
    """The loop used to keep epoch 1's plan for every epoch (only a resumed job computed its epoch's own),
    so an uninterrupted run and a resumed one took different batches from epoch 2 on."""
    from albert_ner.batching import training_batches

    sentences = [Sentence(tuple("张伟在北京工作"[: 2 + index % 5]), ()) for index in range(40)]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    examples = EncodedExamples(sentences, 126, CharTokenizer(vocab), LabelMap(["PER"], scheme="bio"))
    fresh = training_batches(examples, 8, seed=3, group_by_length=True, token_dropout=0.2, unk_id=vocab.unk_id,
                             epoch=1, next_batch=0)
    for epoch in (1, 2, 3):
        plan = batch_plan(examples.lengths, 8, seed=3, epoch=epoch, group_by_length=True)
        resumed = training_batches(examples, 8, seed=3, group_by_length=True, token_dropout=0.2,
                                   unk_id=vocab.unk_id, epoch=epoch, next_batch=2)
        for index, indices in enumerate(plan):
            batch = next(fresh)
            assert (batch.epoch, batch.index, batch.last_in_epoch) == (epoch, index, index == len(plan) - 1)
            np.testing.assert_array_equal(batch.lengths, examples.lengths[indices])
            if index >= 2:
                again = next(resumed)
                np.testing.assert_array_equal(again.token_ids, batch.token_ids)  # token dropout too
    first, second = (batch_plan(examples.lengths, 8, 3, epoch, True) for epoch in (1, 2))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
