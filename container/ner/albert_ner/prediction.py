"""A trained tagger with its vocabulary and label map: text in, one tag per character and entities out.

The same object evaluates during training (on the model in memory), backs ``albert-ner predict`` and
``serve``, and is what ``/opt/ml/model`` holds. The numbers come from a runtime's core
(:mod:`albert_ner.runtimes`: TensorFlow or ONNX Runtime); everything else here is shared by all of them.
Sentences longer than the model's window are cut into windows and their tags put back together, so every
input character gets exactly one tag and nothing is truncated. A model with a lexicon gets each
sentence's dictionary matches, found on the whole sentence before the cut.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from albert_ner.confidence import ScoredPrediction, TagLogProbabilities
from albert_ner.lexicon import Lexicon
from albert_ner.model_directory import SavedTagger, read_description, save_model
from albert_ner.padding import pad_batch, pad_features
from albert_ner.runtimes.choice import TENSORFLOW, TaggingCore, choose_runtime, requested_runtime
from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import LabelMap, tags_to_entities
from albert_ner.tokenization import CharTokenizer
from albert_ner.windows import Window, merge_window_tags, split_into_windows, window_features

if TYPE_CHECKING:
    from albert_ner.modeling.tagger import AlbertTagger


class Predictor:
    """Runs a tagger over any number of sentences of any length, in length-sorted batches."""

    def __init__(self, core: TaggingCore, tokenizer: CharTokenizer, label_map: LabelMap,
                 max_seq_length: int, batch_size: int = 128, pretrained: dict | None = None,
                 temperature: float = 1.0, lexicon: Lexicon | None = None):
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        lexicon_size = 0 if lexicon is None else lexicon.feature_size
        if lexicon_size != core.lexicon_size:
            raise ValueError(f"the model takes {core.lexicon_size} lexicon features per character, the lexicon "
                             f"gives {lexicon_size}")
        self.lexicon = lexicon
        self.core = core
        self.pretrained = pretrained  # provenance of the pretrained encoder, kept in model_config.json
        self.temperature = float(temperature)
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size

    @property
    def model(self) -> AlbertTagger:
        """The Keras tagger: training, saving and the SavedModel export need it, so the TensorFlow runtime."""
        if self.core.model is None:
            raise TypeError(f"this predictor runs on {self.core.runtime}, which has no Keras model; load it with "
                            f"runtime={TENSORFLOW!r}")
        return self.core.model

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

    def windows(self, token_sequences: Sequence[Sequence[str]]
                ) -> tuple[list[list[Window]], list[tuple[str, ...]], list[np.ndarray]]:
        """Each sentence's windows, and all windows' tokens and lexicon features in order (the dictionary is
        matched on the whole sentence, before the cut)."""
        windows_per_sentence = [split_into_windows(Sentence(tokens=tuple(tokens), entities=()), self.window)
                                for tokens in token_sequences]
        flat = [window.sentence.tokens for windows in windows_per_sentence for window in windows]
        flat_features = [np.zeros((len(tokens), 0), np.uint8) for tokens in flat]
        if self.lexicon is not None:
            flat_features = []
            for tokens, windows in zip(token_sequences, windows_per_sentence, strict=True):
                features = self.lexicon.matcher.features(tokens)
                flat_features.extend(window_features(features, window.offset, window.sentence) for window in windows)
        return windows_per_sentence, flat, flat_features

    def _predict(self, token_sequences: Sequence[Sequence[str]], with_probabilities: bool
                 ) -> list[tuple[list[str], TagLogProbabilities | None]]:
        windows_per_sentence, flat, flat_features = self.windows(token_sequences)
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
        tags: list[list[str]] = [[] for _ in windows]
        empty = np.zeros(0, np.float32)
        probabilities = [TagLogProbabilities(empty, empty, empty) for _ in windows]
        for batch, ids, lengths, lexicon in self.batches(windows, features):
            if with_probabilities:
                predicted, *arrays = self.core.tag_with_probabilities(ids, lengths, lexicon, self.temperature)
            else:
                predicted, arrays = self.core.tag(ids, lengths, lexicon), []
            for row, index in enumerate(batch):
                length = lengths[row]
                tags[index] = [self.label_map.tag(tag_id) for tag_id in predicted[row, :length]]
                if arrays:
                    probabilities[index] = TagLogProbabilities(*(values[row, :length] for values in arrays))
        return tags, probabilities

    def batches(self, windows: Sequence[Sequence[str]], features: Sequence[np.ndarray]
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The core's input batches for ``windows``, length-sorted: ``(window indices, ids, lengths, lexicon)``.

        Batches of empty windows only are left out: they have no tags and nothing to score.
        """
        encoded = [self.tokenizer.encode(tokens) for tokens in windows]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            ids, lengths = pad_batch([encoded[index] for index in batch], self.tokenizer.vocab.pad_id)
            if ids.shape[1]:
                yield batch, ids, lengths, pad_features([features[index] for index in batch], self.core.lexicon_size)

    @property
    def saved(self) -> SavedTagger:
        """What :func:`~albert_ner.model_directory.save_model` writes of this predictor."""
        return SavedTagger(self.model, self.tokenizer, self.label_map, self.max_seq_length, self.pretrained,
                           self.temperature, self.lexicon)

    def save(self, model_dir: Path) -> None:
        """Write the model directory: everything needed to predict or fine-tune again."""
        save_model(Path(model_dir), self.saved)

    @classmethod
    def of_model(cls, model: AlbertTagger, tokenizer: CharTokenizer, label_map: LabelMap, max_seq_length: int,
                 batch_size: int = 128, pretrained: dict | None = None, temperature: float = 1.0,
                 lexicon: Lexicon | None = None) -> Predictor:
        """A predictor on the Keras ``model`` itself (TensorFlow): the one training updates, or one in memory."""
        from albert_ner.runtimes.tensorflow_runtime import TensorFlowCore

        return cls(TensorFlowCore(model, label_map.continuations()), tokenizer, label_map, max_seq_length,
                   batch_size, pretrained, temperature, lexicon)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], batch_size: int = 128, runtime: str | None = None,
             threads: int | None = None) -> Predictor:
        """The model directory's predictor on ``runtime`` (None: ``ALBERT_NER_RUNTIME``, else the default that
        :func:`~albert_ner.runtimes.choice.choose_runtime` picks); ``threads`` sizes ONNX Runtime's intra-op
        pool (TensorFlow's threads are set process-wide, before it starts)."""
        model_dir = Path(model_dir)
        description = read_description(model_dir)
        runtime = choose_runtime(model_dir, requested_runtime(runtime))
        core: TaggingCore
        if runtime == TENSORFLOW:
            from albert_ner.runtimes.tensorflow_runtime import load_tensorflow_core

            core = load_tensorflow_core(model_dir, description)
        else:
            from albert_ner.runtimes.onnx_runtime import load_onnx_core

            core = load_onnx_core(model_dir, description, runtime, threads)
        return cls(core, description.tokenizer, description.label_map, description.max_seq_length, batch_size,
                   description.pretrained, description.temperature, description.lexicon)


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
