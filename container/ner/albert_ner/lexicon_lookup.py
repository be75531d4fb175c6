"""The lexicon's features computed inside a TensorFlow graph, for the SavedModel, which needs no Python.

The same features as :meth:`albert_ner.lexicon.LexiconMatcher.features`, by other means: every substring
of one to ``longest_word`` characters is looked up in a hash table (word -> the set of channels it sets),
and the hits are spread over the positions they cover with shifts and running sums instead of loops.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from albert_ner.lexicon import POSITIONS, Lexicon


class LexiconLookup(tf.Module):
    """Callable on code points ``[batch, (chars)]`` (ragged int32), giving ``[batch, longest row,
    feature_size]`` uint8 features, zero past each row's end."""

    def __init__(self, lexicon: Lexicon):
        super().__init__(name="lexicon_lookup")
        word_channels = lexicon.word_channels()
        channel_sets = sorted(set(word_channels.values()))
        set_index = {channels: number for number, channels in enumerate(channel_sets)}
        words = list(word_channels)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words, tf.string), tf.constant([set_index[word_channels[w]] for w in words], tf.int64)),
            default_value=-1)
        self.width = len(lexicon.channels)
        sets = np.zeros((len(channel_sets), self.width), np.int32)
        for number, channels in enumerate(channel_sets):
            sets[number, list(channels)] = 1
        self.channel_sets = tf.constant(sets)
        self.longest_word = lexicon.longest_word

    def __call__(self, code_points: tf.RaggedTensor) -> tf.Tensor:
        characters = tf.strings.unicode_encode(tf.expand_dims(code_points, -1), "UTF-8")
        batch = tf.shape(code_points.row_lengths())[0]
        time = tf.cast(tf.reduce_max(tf.concat([code_points.row_lengths(), [0]], axis=0)), tf.int32)
        shape = tf.stack([batch, time, self.width])
        begin = inside = end = single = tf.zeros(shape, tf.int32)
        for length in range(1, self.longest_word + 1):
            # hits[b, s, c]: the word of `length` characters starting at s sets channel c.
            ids = self.table.lookup(tf.strings.ngrams(characters, length, separator=""))
            hits = tf.ragged.map_flat_values(self._channels_of, ids).to_tensor(default_value=0, shape=shape)
            if length == 1:
                single += hits
                continue
            begin += hits
            end += tf.pad(hits, [[0, 0], [length - 1, 0], [0, 0]])[:, :time]
            if length > 2:
                # inside[c] = sum of hits[s] for c - length + 2 <= s <= c - 1, from an exclusive running sum.
                running = tf.pad(tf.cumsum(hits, axis=1), [[0, 0], [1, 0], [0, 0]])
                inside += running[:, :time] - tf.pad(running, [[0, 0], [length - 2, 0], [0, 0]])[:, :time]
        features = tf.stack([begin, inside, end, single], axis=2) > 0
        return tf.reshape(tf.cast(features, tf.uint8), [batch, time, len(POSITIONS) * self.width])

    def _channels_of(self, found: tf.Tensor) -> tf.Tensor:
        """``[n, channels]`` 0/1 rows for table results ``[n]`` (-1, not a word: all zero)."""
        return tf.gather(self.channel_sets, tf.maximum(found, 0)) * tf.cast(found >= 0, tf.int32)[:, None]
