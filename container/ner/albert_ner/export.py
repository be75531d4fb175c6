"""The trained tagger as a self-contained TensorFlow SavedModel: raw UTF-8 text in, tags and entities out.

``<model_dir>/1/`` is laid out as the AWS TensorFlow Serving container expects (``<version digits>/
saved_model.pb`` + ``variables/``) and loads with plain ``tf.saved_model.load``, without this package.
Everything :class:`~albert_ner.prediction.Predictor` does in Python happens inside the graph, with the
same rules, so the two give the same answer:

- characters are Unicode code points (``tf.strings.unicode_decode``; a byte that is not UTF-8 becomes
  U+FFFD), so offsets are Python ``str`` offsets;
- each code point maps to its vocabulary id through a table of all 0x110000 code points built from
  :meth:`CharTokenizer.normalize` at export time (case, full width, accents, whitespace and control
  characters included; anything else is ``[UNK]``);
- texts longer than the window are cut as :func:`albert_ner.windows.split_into_windows` cuts a sentence
  without entities (the latest boundary within the window right after 。！？；，.!?;, else at the window
  length), tagged window by window and put back together;
- a model with a lexicon matches its dictionary on the whole text with hash-table lookups of every
  substring up to the longest word (:mod:`albert_ner.lexicon_lookup`), as the Predictor matches it;
- the tagger adds ``[CLS]``/``[SEP]`` itself and decodes with its CRF (Viterbi) or softmax;
- spans are read from the tags as ``tags_to_entities(..., repair=True)`` reads them;
- each entity's score and the text's are computed from the same per-character log-probabilities, by the
  same formula, as :mod:`albert_ner.confidence` computes them (exact CRF probabilities, float32).

The ``serving_default`` signature takes ``text``: a ``tf.string`` vector of any length (one text per row,
any number of characters, the empty string included) and returns, padded to the longest row:

==================  ===============  =============================================================
``tags``            string [B, T]    one tag per character (model scheme); ``""`` past ``lengths``
``lengths``         int32 [B]        characters per text
``entity_types``    string [B, E]    entity type; ``""`` past ``entity_counts``
``entity_starts``   int32 [B, E]     first character of the entity; -1 past ``entity_counts``
``entity_ends``     int32 [B, E]     one past its last character (end exclusive); -1 past the count
``entity_counts``   int32 [B]        entities per text
``entity_scores``   float32 [B, E]   probability that exactly these characters form exactly this
                                     entity (0 to 1); -1 past ``entity_counts``
``sentence_scores`` float32 [B]      probability of the text's whole predicted tagging (1 when empty)
==================  ===============  =============================================================

Throughput is best when a batch holds texts of similar length: every window of the batch is padded to
the longest one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from albert_ner.files import replacing
from albert_ner.lexicon_lookup import LexiconLookup
from albert_ner.model_directory import SAVED_MODEL_VERSION
from albert_ner.prediction import Predictor
from albert_ner.runtimes.tensorflow_runtime import tag_with_probabilities
from albert_ner.tag_schemes import parse_tag
from albert_ner.windows import SENTENCE_PUNCTUATION

SIGNATURE_NAME = "serving_default"
UNICODE_CODE_POINTS = 0x110000
_REPLACEMENT_CHARACTER = 0xFFFD


def code_point_ids(predictor: Predictor) -> np.ndarray:
    """The vocabulary id of every Unicode code point, as the predictor's tokenizer maps it."""
    tokenizer = predictor.tokenizer
    vocab = tokenizer.vocab
    ids = np.full(UNICODE_CODE_POINTS, vocab.unk_id, dtype=np.int32)
    for code in range(UNICODE_CODE_POINTS):
        if 0xD800 <= code <= 0xDFFF:  # surrogates: never the result of decoding UTF-8
            continue
        token_id = vocab.id(tokenizer.normalize(chr(code)))
        if token_id != vocab.unk_id:
            ids[code] = token_id
    return ids


class TextTagger(tf.Module):
    """The tf.Module that is saved: the tagger plus the lookup tables its serving function needs."""

    def __init__(self, predictor: Predictor):
        super().__init__(name="albert_ner")
        model = predictor.model
        # The Keras model itself is not tracked (saving it would also save Keras's own signature, traced
        # for a single input); its variables are, and the serving function captures them.
        self.model_variables = list(model.variables)
        label_map = predictor.label_map
        continuations, temperature = label_map.continuations(), predictor.temperature
        self._tag_windows = lambda ids, lengths, lexicon: tag_with_probabilities(model, continuations, ids, lengths,
                                                                                  lexicon, temperature)
        self.lexicon = None if predictor.lexicon is None else LexiconLookup(predictor.lexicon)
        self.window = predictor.window
        self.pad_id = predictor.tokenizer.vocab.pad_id
        self.code_point_ids = tf.Variable(code_point_ids(predictor), trainable=False, name="code_point_ids")
        self.punctuation_code_points = tf.constant(sorted(ord(char) for char in SENTENCE_PUNCTUATION),
                                                   dtype=tf.int32)
        parsed = [parse_tag(tag) for tag in label_map.tags]
        types = [""] + list(label_map.entity_types)
        self.tag_names = tf.constant(label_map.tags)
        self.type_names = tf.constant(types)
        self.tag_type = tf.constant([types.index(entity_type) for _, entity_type in parsed], tf.int32)
        # After a tag with one of these prefixes an entity is still open; a tag with an inside prefix
        # continues an open entity of its own type and otherwise starts one (the repair rule).
        self.tag_keeps_open = tf.constant([prefix in ("B", "I", "M") for prefix, _ in parsed])
        self.tag_is_inside = tf.constant([prefix in ("I", "M", "E") for prefix, _ in parsed])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        code_points = tf.strings.unicode_decode(text, "UTF-8", errors="replace",
                                                replacement_char=_REPLACEMENT_CHARACTER)
        lengths = tf.cast(code_points.row_lengths(), tf.int32)
        token_ids = tf.gather(self.code_point_ids, code_points)
        window_texts, window_starts, window_lengths = self._windows(code_points, lengths)

        dense_ids = token_ids.to_tensor(default_value=self.pad_id)
        longest = tf.reduce_max(tf.concat([window_lengths, [0]], axis=0))
        offsets = window_starts[:, None] + tf.range(longest)[None, :]
        in_window = tf.sequence_mask(window_lengths, longest)
        gather_at = tf.stack([tf.broadcast_to(window_texts[:, None], tf.shape(offsets)),
                              tf.where(in_window, offsets, 0)], axis=-1)
        window_ids = tf.where(in_window, tf.gather_nd(dense_ids, gather_at), self.pad_id)
        if self.lexicon is not None:
            features = tf.gather_nd(self.lexicon(code_points), gather_at)
            window_lexicon = features * tf.cast(in_window, tf.uint8)[..., None]
        else:
            window_lexicon = tf.zeros(tf.concat([tf.shape(window_ids), [0]], axis=0), tf.uint8)
        nothing = tf.zeros(tf.shape(window_ids), tf.float32)
        window_outputs = tf.cond(
            longest > 0,
            lambda: self._tag_windows(window_ids, window_lengths, window_lexicon),
            lambda: (tf.zeros_like(window_ids), nothing, nothing, nothing),
        )
        scatter_at = tf.boolean_mask(gather_at, in_window)
        tag_ids, marginal, conditional, closing = (
            tf.scatter_nd(scatter_at, tf.boolean_mask(values, in_window), tf.shape(dense_ids))
            for values in window_outputs)
        outputs = self._entities(tag_ids, lengths, marginal, conditional, closing)
        char_mask = tf.sequence_mask(lengths, tf.shape(tag_ids)[1])
        outputs["tags"] = tf.where(char_mask, tf.gather(self.tag_names, tag_ids), "")
        outputs["lengths"] = lengths
        outputs["sentence_scores"] = tf.minimum(1.0, tf.exp(tf.reduce_sum(conditional, axis=1)))
        return outputs

    def _windows(self, code_points: tf.RaggedTensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``(text index, start, length)`` of every non-empty window, texts in order, windows in order."""
        window = self.window
        # Boundaries right after punctuation, per text, ascending; padded past any boundary.
        is_punctuation = tf.reduce_any(code_points[..., None] == self.punctuation_code_points, axis=-1)
        boundaries = tf.ragged.boolean_mask(tf.ragged.range(1, lengths + 1), is_punctuation)
        boundaries = boundaries.to_tensor(default_value=tf.int32.max)
        boundaries = tf.pad(boundaries, [[0, 0], [0, 1]], constant_values=tf.int32.max)

        def cut(start: tf.Tensor) -> tf.Tensor:
            limit = start + window
            found = tf.searchsorted(boundaries, limit[:, None], side="right")[:, 0] - 1
            latest = tf.gather(boundaries, tf.maximum(found, 0), batch_dims=1)
            cut_at = tf.where((found >= 0) & (latest > start), latest, limit)
            return tf.where(lengths - start > window, cut_at, lengths)

        def more(start: tf.Tensor, starts: tf.Tensor) -> tf.Tensor:
            return tf.reduce_any(start < lengths)

        def step(start: tf.Tensor, starts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            following = cut(start)
            return following, tf.concat([starts, following[:, None]], axis=1)

        first = tf.zeros_like(lengths)
        _, starts = tf.while_loop(more, step, [first, first[:, None]],
                                  shape_invariants=[first.shape, tf.TensorShape([None, None])])
        # Column k holds each text's k-th window start; a finished text repeats its length.
        ends, starts = starts[:, 1:], starts[:, :-1]
        real = ends > starts
        text_index = tf.broadcast_to(tf.range(tf.size(lengths))[:, None], tf.shape(starts))
        return (tf.boolean_mask(text_index, real), tf.boolean_mask(starts, real),
                tf.boolean_mask(ends - starts, real))

    def _entities(self, tag_ids: tf.Tensor, lengths: tf.Tensor, marginal: tf.Tensor, conditional: tf.Tensor,
                  closing: tf.Tensor) -> dict[str, tf.Tensor]:
        time = tf.shape(tag_ids)[1]
        valid = tf.sequence_mask(lengths, time)
        previous = tf.pad(tag_ids[:, :-1], [[0, 0], [1, 0]])
        previous_valid = tf.pad(valid[:, :-1], [[0, 0], [1, 0]])
        continues = (valid & previous_valid & tf.gather(self.tag_is_inside, tag_ids)
                     & tf.gather(self.tag_keeps_open, previous)
                     & tf.equal(tf.gather(self.tag_type, previous), tf.gather(self.tag_type, tag_ids)))
        in_entity = valid & (tag_ids != 0)
        starts = in_entity & ~continues
        next_continues = tf.pad(continues[:, 1:], [[0, 0], [0, 1]])
        ends = in_entity & ~next_continues
        positions = tf.broadcast_to(tf.range(time)[None, :], tf.shape(tag_ids))
        entity_starts = tf.ragged.boolean_mask(positions, starts)
        entity_ends = tf.ragged.boolean_mask(positions + 1, ends)
        entity_types = tf.gather(self.type_names, tf.ragged.boolean_mask(tf.gather(self.tag_type, tag_ids), starts))
        # score = exp(marginal[start] + sum(conditional[start+1:end]) + closing[end-1]), entities row-major.
        entity_index = tf.reshape(tf.cumsum(tf.reshape(tf.cast(starts, tf.int32), [-1])), tf.shape(starts)) - 1
        continuing = in_entity & ~starts
        inner = tf.math.unsorted_segment_sum(tf.boolean_mask(conditional, continuing),
                                             tf.boolean_mask(entity_index, continuing),
                                             tf.reduce_sum(tf.cast(starts, tf.int32)))
        log_scores = tf.boolean_mask(marginal, starts) + inner + tf.boolean_mask(closing, ends)
        flat_scores = tf.minimum(1.0, tf.exp(log_scores))
        entity_scores = tf.RaggedTensor.from_row_lengths(flat_scores, entity_starts.row_lengths())
        return {
            "entity_scores": entity_scores.to_tensor(default_value=-1.0),
            "entity_types": entity_types.to_tensor(default_value=""),
            "entity_starts": entity_starts.to_tensor(default_value=-1),
            "entity_ends": entity_ends.to_tensor(default_value=-1),
            "entity_counts": tf.cast(entity_starts.row_lengths(), tf.int32),
        }


def export_saved_model(predictor: Predictor, model_dir: Path) -> Path:
    """Write the SavedModel to ``model_dir/1`` (replacing one already there) and return that path.

    It is written beside its final place and renamed when complete, like every other model file.
    """
    model_dir = Path(model_dir)
    target = model_dir / SAVED_MODEL_VERSION
    module = TextTagger(predictor)
    with replacing(target) as partial:
        tf.saved_model.save(module, str(partial), signatures={SIGNATURE_NAME: module.serve})
    return target
