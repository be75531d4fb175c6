"""A trained tagger with its vocabulary and label map: text in, one tag per character and entities out.

The same object evaluates during training (on the model in memory), backs ``albert-ner predict``, and is
what ``/opt/ml/model`` holds. Sentences longer than the model's window are cut into windows and their
tags put back together, so every input character gets exactly one tag and nothing is truncated.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

import numpy as np
import tensorflow as tf

from albert_ner.data import Sentence, merge_window_tags, split_into_windows
from albert_ner.errors import DataError
from albert_ner.files import write_text_atomically
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.tag_schemes import Entity, LabelMap, tags_to_entities
from albert_ner.tokenization import CharTokenizer, Vocab

WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "model_config.json"
LABEL_MAP_FILE = "label_map.json"
VOCAB_FILE = "vocab.txt"


class Predictor:
    """Runs a tagger over any number of sentences of any length, in length-sorted batches."""

    def __init__(self, model: AlbertTagger, tokenizer: CharTokenizer, label_map: LabelMap,
                 max_seq_length: int, batch_size: int = 128):
        self.model = model
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self._decode = tf.function(
            lambda ids, lengths: model.decode(model(ids, lengths, training=False), lengths),
            input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
        )

    @property
    def window(self) -> int:
        """Characters per window: the sequence length less [CLS] and [SEP]."""
        return self.max_seq_length - 2

    def predict_tags(self, token_sequences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag (in the model's scheme) per input token, for every sentence."""
        windows_per_sentence = [split_into_windows(Sentence(tokens=tuple(tokens), entities=()), self.window)
                                for tokens in token_sequences]
        flat = [window.sentence.tokens for windows in windows_per_sentence for window in windows]
        flat_tags = self._tag_windows(flat)
        results, position = [], 0
        for windows in windows_per_sentence:
            results.append(merge_window_tags(windows, flat_tags[position:position + len(windows)]))
            position += len(windows)
        return results

    def predict_entities(self, token_sequences: Sequence[Sequence[str]]) -> list[list[Entity]]:
        """Entity spans per sentence; token offsets, end exclusive."""
        return [tags_to_entities(tags, self.label_map.scheme, repair=True)[0]
                for tags in self.predict_tags(token_sequences)]

    def _tag_windows(self, windows: Sequence[Sequence[str]]) -> list[list[str]]:
        if not windows:
            return []
        encoded = [self.tokenizer.encode(tokens) for tokens in windows]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        tags: list[list[str]] = [[] for _ in windows]
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            ids, lengths = pad_batch([encoded[index] for index in batch], self.tokenizer.vocab.pad_id)
            predicted = self._decode(ids, lengths).numpy() if ids.shape[1] else np.zeros(ids.shape, np.int32)
            for row, index in enumerate(batch):
                tags[index] = [self.label_map.tag(tag_id) for tag_id in predicted[row, :lengths[row]]]
        return tags

    def save(self, model_dir: Path) -> None:
        """Write weights, config, label map and vocab: everything needed to predict or fine-tune again."""
        model_dir.mkdir(parents=True, exist_ok=True)
        partial = model_dir / f".partial.{WEIGHTS_FILE}"
        self.model.save_weights(partial)
        os.replace(partial, model_dir / WEIGHTS_FILE)
        config = {"tagger": self.model.get_config(), "max_seq_length": self.max_seq_length,
                  "lower_case": self.tokenizer.lower_case}
        write_text_atomically(model_dir / CONFIG_FILE, json.dumps(config, ensure_ascii=False) + "\n")
        write_text_atomically(model_dir / LABEL_MAP_FILE,
                              json.dumps(self.label_map.to_dict(), ensure_ascii=False, indent=2) + "\n")
        self.tokenizer.vocab.save(model_dir / VOCAB_FILE)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], batch_size: int = 128) -> "Predictor":
        model_dir = Path(model_dir)
        config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        label_map = LabelMap.from_dict(json.loads((model_dir / LABEL_MAP_FILE).read_text(encoding="utf-8")))
        tokenizer = CharTokenizer(Vocab.from_file(model_dir / VOCAB_FILE), lower_case=config["lower_case"])
        model = AlbertTagger(**config["tagger"])
        build_model(model, tokenizer.vocab.pad_id)
        model.load_weights(model_dir / WEIGHTS_FILE)
        return cls(model, tokenizer, label_map, config["max_seq_length"], batch_size)


def build_model(model: AlbertTagger, pad_id: int) -> None:
    """Create the model's variables by running it once on a one-character batch."""
    model(tf.fill([1, 1], pad_id), tf.ones([1], tf.int32), training=False)


def pad_batch(sequences: Iterable[np.ndarray], pad_value: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-D int arrays to a ``[batch, longest]`` int32 matrix; also return the lengths."""
    sequences = list(sequences)
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int32)
    padded = np.full((len(sequences), int(lengths.max(initial=0))), pad_value, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        padded[row, :len(sequence)] = sequence
    return padded, lengths


def entity_records(tokens: Sequence[str], entities: Sequence[Entity]) -> list[dict]:
    """Entities as the JSON objects users get: type, start, end (exclusive, character offsets), text."""
    return [{"type": entity.type, "start": entity.start, "end": entity.end,
             "text": "".join(tokens[entity.start:entity.end])} for entity in entities]


def read_texts(path: Path) -> Iterator[str]:
    """Sentences from a text file (one per line) or JSON Lines (a string or ``{"text": ...}`` per line)."""
    with open(path, encoding="utf-8", newline="") as stream:
        try:
            for number, line in enumerate(stream, start=1):
                line = line.rstrip("\r\n")
                if line.lstrip().startswith(("{", '"')):
                    yield _text_of_json_line(line, path, number)
                else:
                    yield line
        except UnicodeDecodeError as error:
            raise DataError(f"not UTF-8 ({error.reason} at byte {error.start} of the line)", path,
                            number + 1) from None


def _text_of_json_line(line: str, path: Path, number: int) -> str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON at column {error.colno}: {error.msg}", path, number) from None
    if isinstance(value, dict):
        value = value.get("text")
    if not isinstance(value, str):
        raise DataError('expected a JSON string or an object with a "text" string', path, number)
    return value


def stream_predictions(predictor: Predictor, source: Iterable[str] | Path, output: TextIO,
                       chunk_size: int = 2048) -> int:
    """Tag texts as they are read and write one JSON line per text, in order; returns the count."""
    texts = read_texts(source) if isinstance(source, Path) else iter(source)
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(unit="sentence", dynamic_ncols=True)
    count = 0
    while chunk := list(itertools.islice(texts, chunk_size)):
        for text, entities in zip(chunk, predictor.predict_entities([list(text) for text in chunk])):
            output.write(json.dumps({"text": text, "entities": entity_records(text, entities)},
                                    ensure_ascii=False) + "\n")
        output.flush()
        count += len(chunk)
        if progress is not None:
            progress.update(len(chunk))
    if progress is not None:
        progress.close()
    return count
