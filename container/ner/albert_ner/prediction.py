"""A trained tagger with its vocabulary and label map: text in, one tag per character and entities out.

The same object evaluates during training (on the model in memory), backs ``albert-ner predict``, and is
what ``/opt/ml/model`` holds. Sentences longer than the model's window are cut into windows and their
tags put back together, so every input character gets exactly one tag and nothing is truncated. A model
with a lexicon gets each sentence's dictionary matches, found on the whole sentence before the cut.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from albert_ner.confidence import ScoredPrediction, TagLogProbabilities
from albert_ner.lexicon import Lexicon
from albert_ner.model_directory import SavedTagger, load_model, save_model
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.padding import pad_batch, pad_features
from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import LabelMap, tags_to_entities
from albert_ner.tokenization import CharTokenizer
from albert_ner.windows import merge_window_tags, split_into_windows, window_features


class Predictor:
    """Runs a tagger over any number of sentences of any length, in length-sorted batches."""

    def __init__(self, model: AlbertTagger, tokenizer: CharTokenizer, label_map: LabelMap,
                 max_seq_length: int, batch_size: int = 128, pretrained: dict | None = None,
                 temperature: float = 1.0, lexicon: Lexicon | None = None):
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        lexicon_size = 0 if lexicon is None else lexicon.feature_size
        if lexicon_size != model.lexicon_size:
            raise ValueError(f"the model takes {model.lexicon_size} lexicon features per character, the lexicon "
                             f"gives {lexicon_size}")
        self.lexicon = lexicon
        self.model = model
        self.pretrained = pretrained  # provenance of the pretrained encoder, kept in model_config.json
        self.temperature = float(temperature)
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        signature = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32),
                     tf.TensorSpec([None, None, lexicon_size], tf.uint8)]
        self._decode = tf.function(
            lambda ids, lengths, lexicon: model.decode(model(ids, lengths, lexicon, training=False), lengths),
            input_signature=signature,
        )
        self._decode_with_probabilities = tf.function(
            lambda ids, lengths, lexicon: tag_with_probabilities(model, label_map, ids, lengths, lexicon,
                                                                 self.temperature),
            input_signature=signature)

    @property
    def window(self) -> int:
        """Characters per window: the sequence length less [CLS] and [SEP]."""
        return self.max_seq_length - 2

    def predict_tags(self, token_sequences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag (in the model's scheme) per input token, for every sentence."""
        return [tags for tags, _ in self._predict(token_sequences, with_probabilities=False)]

    def predict_entities(self, token_sequences: Sequence[Sequence[str]]) -> list[list[Entity]]:
        """Entity spans per sentence; token offsets, end exclusive."""
        return [tags_to_entities(tags, self.label_map.scheme, repair=True)[0]
                for tags in self.predict_tags(token_sequences)]

    def predict(self, token_sequences: Sequence[Sequence[str]]) -> list[ScoredPrediction]:
        """Tags and entities with their confidences (:mod:`albert_ner.confidence`), for every sentence.

        Computing the scores costs a forward-backward pass over each window on top of Viterbi (see
        bench/README.md for the throughput with and without).
        """
        predictions = []
        for tags, probabilities in self._predict(token_sequences, with_probabilities=True):
            assert probabilities is not None
            entities = tags_to_entities(tags, self.label_map.scheme, repair=True)[0]
            predictions.append(ScoredPrediction(tags, entities, [probabilities.entity_score(e) for e in entities],
                                                probabilities.sentence_score()))
        return predictions

    def _predict(self, token_sequences: Sequence[Sequence[str]], with_probabilities: bool
                 ) -> list[tuple[list[str], TagLogProbabilities | None]]:
        windows_per_sentence = [split_into_windows(Sentence(tokens=tuple(tokens), entities=()), self.window)
                                for tokens in token_sequences]
        flat = [window.sentence.tokens for windows in windows_per_sentence for window in windows]
        flat_features = [np.zeros((len(tokens), 0), np.uint8) for tokens in flat]
        if self.lexicon is not None:
            flat_features = []
            for tokens, windows in zip(token_sequences, windows_per_sentence, strict=True):
                features = self.lexicon.matcher.features(tokens)
                flat_features.extend(window_features(features, window.offset, window.sentence) for window in windows)
        flat_tags, flat_probabilities = self._tag_windows(flat, flat_features, with_probabilities)
        results: list[tuple[list[str], TagLogProbabilities | None]] = []
        position = 0
        for windows in windows_per_sentence:
            taken = slice(position, position + len(windows))
            tags = merge_window_tags(windows, flat_tags[taken])
            probabilities = None
            if with_probabilities:
                parts = flat_probabilities[taken]
                probabilities = TagLogProbabilities(*(
                    np.concatenate([getattr(part, field) for part in parts]).astype(np.float32)
                    for field in ("marginal", "conditional", "closing")))
            results.append((tags, probabilities))
            position += len(windows)
        return results

    def _tag_windows(self, windows: Sequence[Sequence[str]], features: Sequence[np.ndarray],
                     with_probabilities: bool) -> tuple[list[list[str]], list[TagLogProbabilities]]:
        encoded = [self.tokenizer.encode(tokens) for tokens in windows]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        tags: list[list[str]] = [[] for _ in windows]
        empty = np.zeros(0, np.float32)
        probabilities = [TagLogProbabilities(empty, empty, empty) for _ in windows]
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            ids, lengths = pad_batch([encoded[index] for index in batch], self.tokenizer.vocab.pad_id)
            if not ids.shape[1]:
                continue  # only empty windows: no tags, nothing to score
            lexicon = pad_features([features[index] for index in batch], self.model.lexicon_size)
            if with_probabilities:
                predicted, *arrays = (values.numpy()
                                      for values in self._decode_with_probabilities(ids, lengths, lexicon))
            else:
                predicted, arrays = self._decode(ids, lengths, lexicon).numpy(), []
            for row, index in enumerate(batch):
                length = lengths[row]
                tags[index] = [self.label_map.tag(tag_id) for tag_id in predicted[row, :length]]
                if arrays:
                    probabilities[index] = TagLogProbabilities(*(values[row, :length] for values in arrays))
        return tags, probabilities

    @property
    def saved(self) -> SavedTagger:
        """What :func:`~albert_ner.model_directory.save_model` writes of this predictor."""
        return SavedTagger(self.model, self.tokenizer, self.label_map, self.max_seq_length, self.pretrained,
                           self.temperature, self.lexicon)

    def save(self, model_dir: Path) -> None:
        """Write the model directory: everything needed to predict or fine-tune again."""
        save_model(Path(model_dir), self.saved)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], batch_size: int = 128) -> Predictor:
        saved = load_model(Path(model_dir))
        return cls(saved.model, saved.tokenizer, saved.label_map, saved.max_seq_length, batch_size, saved.pretrained,
                   saved.temperature, saved.lexicon)


def tag_with_probabilities(model: AlbertTagger, label_map: LabelMap, ids: tf.Tensor, lengths: tf.Tensor,
                           lexicon: tf.Tensor, temperature: float = 1.0
                           ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Best tags ``[B, T]`` and their (marginal, conditional, closing) log-probabilities ``[B, T]`` each,
    at the calibration ``temperature``.

    Shared by the Predictor and the exported SavedModel, so both compute the same numbers.
    """
    scores = model(ids, lengths, lexicon, training=False)
    tags = model.decode(scores, lengths)
    return (tags, *model.path_probabilities(scores, lengths, tags, label_map.continuations(), temperature))


def entity_records(tokens: Sequence[str], entities: Sequence[Entity],
                   scores: Sequence[float] | None = None) -> list[dict]:
    """Entities as the JSON objects users get: type, start, end (exclusive, character offsets), text, and
    ``score`` (the model's probability for exactly this entity, :mod:`albert_ner.confidence`) when given."""
    records = [{"type": entity.type, "start": entity.start, "end": entity.end,
                "text": "".join(tokens[entity.start:entity.end])} for entity in entities]
    if scores is not None:
        for record, score in zip(records, scores, strict=True):
            record["score"] = score
    return records
