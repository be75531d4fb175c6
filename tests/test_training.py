"""Batching, encoding and the learning-rate schedule of the training loop."""

from __future__ import annotations

import numpy as np
import pytest

from albert_ner.data import Sentence
from albert_ner.tag_schemes import Entity, LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training import EncodedExamples, WarmupLinearDecay, batch_plan


def test_batch_plan_covers_every_example_once_and_repeats_for_a_seed() -> None:
    lengths = np.random.default_rng(0).integers(1, 100, size=1000)
    plan = batch_plan(lengths, 32, seed=7, epoch=1, group_by_length=True)
    assert sorted(np.concatenate(plan).tolist()) == list(range(1000))
    assert all(len(batch) <= 32 for batch in plan)
    again = batch_plan(lengths, 32, seed=7, epoch=1, group_by_length=True)
    assert all(np.array_equal(a, b) for a, b in zip(plan, again))
    other_epoch = batch_plan(lengths, 32, seed=7, epoch=2, group_by_length=True)
    assert not all(np.array_equal(a, b) for a, b in zip(plan, other_epoch))


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
    examples = EncodedExamples(sentences, CharTokenizer(vocab), label_map)
    assert examples.token_ids.shape == (6,) and len(examples) == 2
    token_ids, tag_ids, lengths = examples.batch(np.array([1, 0]))
    assert lengths.tolist() == [1, 5] and token_ids.shape == (2, 5)
    assert token_ids[0, 1:].tolist() == [vocab.pad_id] * 4
    assert [label_map.tag(t) for t in tag_ids[1]] == ["B-PER", "E-PER", "O", "B-LOC", "E-LOC"]
    assert token_ids[1].tolist() == [vocab.id(char) for char in "张伟在北京"]


def test_warmup_then_linear_decay() -> None:
    schedule = WarmupLinearDecay(peak=1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0])
