"""Training batches: encoded windows, the seeded batch order of each epoch, token dropout, padding.

Every choice here is a pure function of the seed and the data position (epoch, batch), so a job resumed
from a checkpoint takes exactly the batches the stopped one would have taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from albert_ner.lexicon import LexiconMatcher
from albert_ner.padding import pad_batch, pad_features
from albert_ner.sentences import Sentence
from albert_ner.tag_schemes import LabelMap, entities_to_tags
from albert_ner.tokenization import CharTokenizer
from albert_ner.windows import split_into_windows, window_features


class EncodedExamples:
    """Training windows as token and tag ids (and lexicon features), stored once in flat arrays.

    Each sentence is matched against the lexicon whole before it is cut into windows, as the Predictor
    does. The features are kept bit-packed (a byte per 8 slots): 28 bytes per character for jieba's
    dictionary instead of 224.
    """

    def __init__(self, sentences: Sequence[Sentence], window: int, tokenizer: CharTokenizer, label_map: LabelMap,
                 matcher: LexiconMatcher | None = None, weights: Sequence[float] | None = None):
        windows: list[Sentence] = []
        window_weights: list[float] = []  # each window weighs in the loss what its sentence does
        packed: list[np.ndarray] = []
        for sentence, weight in zip(sentences, [1.0] * len(sentences) if weights is None else weights, strict=True):
            features = matcher.features(sentence.tokens) if matcher is not None else None
            for piece in split_into_windows(sentence, window):
                windows.append(piece.sentence)
                window_weights.append(weight)
                if features is not None:
                    packed.append(np.packbits(window_features(features, piece.offset, piece.sentence), axis=1))
        self.lengths = np.array([len(window.tokens) for window in windows], dtype=np.int32)
        self.weights = np.array(window_weights, dtype=np.float32)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        self.token_ids = np.empty(int(self.offsets[-1]), dtype=np.int32)
        self.tag_ids = np.empty(int(self.offsets[-1]), dtype=np.int32)
        tag_index = {tag: index for index, tag in enumerate(label_map.tags)}
        for number, window_sentence in enumerate(windows):
            start, end = self.offsets[number], self.offsets[number + 1]
            self.token_ids[start:end] = tokenizer.encode(window_sentence.tokens)
            tags = entities_to_tags(len(window_sentence.tokens), window_sentence.entities, label_map.scheme)
            self.tag_ids[start:end] = [tag_index[tag] for tag in tags]
        self.lexicon_size = 0 if matcher is None else matcher.feature_size
        self.lexicon = (np.concatenate(packed) if packed
                        else np.zeros((int(self.offsets[-1]), (self.lexicon_size + 7) // 8), np.uint8))
        self.pad_id = tokenizer.vocab.pad_id

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(token_ids, tag_ids, lengths, lexicon)`` of the given examples, right-padded to the longest;
        ``lexicon`` is ``[batch, time, lexicon_size]`` uint8 (``lexicon_size`` 0 without a lexicon)."""
        slices = [slice(self.offsets[i], self.offsets[i + 1]) for i in indices]
        token_ids, lengths = pad_batch((self.token_ids[s] for s in slices), self.pad_id)
        tag_ids, _ = pad_batch((self.tag_ids[s] for s in slices), 0)
        lexicon = pad_features([np.unpackbits(self.lexicon[s], axis=1, count=self.lexicon_size) for s in slices],
                               self.lexicon_size)
        return token_ids, tag_ids, lengths, lexicon


def drop_tokens(token_ids: np.ndarray, lengths: np.ndarray, rate: float, unk_id: int,
                rng: np.random.Generator) -> np.ndarray:
    """A copy of ``token_ids`` with a share ``rate`` of the real (unpadded) tokens replaced by ``unk_id``.

    Word dropout (Lample et al., 2016) for characters: a model trained from scratch otherwise learns the
    training set's names by heart and misses the new ones of the test set.
    """
    real = np.arange(token_ids.shape[1]) < lengths[:, None]
    return np.where(real & (rng.random(token_ids.shape) < rate), unk_id, token_ids).astype(token_ids.dtype)


def batch_plan(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
               group_by_length: bool) -> list[np.ndarray]:
    """The batches of one epoch, as example indices; the same (seed, epoch) always gives the same plan.

    Length grouping sorts shuffled chunks of 50 batches by length, so each batch holds sentences of
    similar length (little padding) while batch order and membership stay random.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group_by_length:
        chunk = batch_size * 50
        order = np.concatenate([
            part[np.argsort(lengths[part], kind="stable")]
            for part in np.array_split(order, max(1, math.ceil(len(order) / chunk)))])
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


@dataclass(frozen=True)
class TrainingBatch:
    """One batch of an epoch's plan, ready for the step: padded ids, tags and lengths."""

    epoch: int
    index: int
    last_in_epoch: bool
    token_ids: np.ndarray
    tag_ids: np.ndarray
    lengths: np.ndarray
    lexicon: np.ndarray
    weights: np.ndarray  # each example's weight in the loss: 1 for gold, teacher_weight for a teacher's


def training_batches(examples: EncodedExamples, batch_size: int, seed: int, group_by_length: bool,
                     token_dropout: float, unk_id: int, epoch: int, next_batch: int) -> Iterator[TrainingBatch]:
    """Every batch from the data position (``epoch``, ``next_batch``) on, epoch after epoch, without end.

    Token dropout is seeded by the position, like the batch plan, so a resumed run drops the same tokens.
    """
    while True:
        plan = batch_plan(examples.lengths, batch_size, seed, epoch, group_by_length)
        for index in range(next_batch, len(plan)):
            token_ids, tag_ids, lengths, lexicon = examples.batch(plan[index])
            if token_dropout:
                rng = np.random.default_rng([seed, epoch, index])
                token_ids = drop_tokens(token_ids, lengths, token_dropout, unk_id, rng)
            yield TrainingBatch(epoch, index, index == len(plan) - 1, token_ids, tag_ids, lengths, lexicon,
                                examples.weights[plan[index]])
        epoch, next_batch = epoch + 1, 0
