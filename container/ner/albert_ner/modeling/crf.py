"""Linear-chain conditional random field: training loss, Viterbi decoding and exact path probabilities.

tensorflow-addons, which used to provide this, does not import on TF >= 2.16, so the tagger carries its
own. Everything is vectorised over the batch and the tags and loops over time inside the graph
(``tf.scan``), so it runs under ``tf.function`` with the sequence length unknown at trace time and
compiles with XLA (``jit_compile=True``).

Conventions shared by every function:

- ``potentials`` ``[B, T, N]``: per-step tag scores (emissions) of any float dtype. All arithmetic is
  float32, even under mixed precision: the forward algorithm adds up ``T`` log-terms, and float16 would
  lose the differences between paths long before ``T = 128``.
- ``lengths`` ``[B]`` int: number of valid steps of each right-padded sequence, clipped to ``[0, T]``.
  Steps at or past a sequence's length are ignored whatever they hold (NaN included). A sequence of
  length 0 has score 0 and log-partition 0, and decodes to all zeros; ``T = 0`` is allowed.
- ``transitions`` ``[N, N]`` (from, to), ``start_transitions`` ``[N]``, ``end_transitions`` ``[N]``.

The score of a path ``y`` of length ``L > 0`` is
``start[y_0] + sum_t potentials[t, y_t] + sum_{0<t<L} transitions[y_{t-1}, y_t] + end[y_{L-1}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

# Added to disallowed transitions for training. Finite, so that log-sum-exp over a tag that nothing may
# reach keeps a defined gradient, and an invalid gold sequence shows up as a loss near 1e4 instead of NaN.
TRAINING_PENALTY = -1e4
# Decoding takes maxima only, where -inf is harmless and makes the constraint absolute: no potentials,
# however large, can make Viterbi choose a disallowed start, transition or end.
DECODING_PENALTY = -np.inf


def _prepare(
    potentials: tf.Tensor, lengths: tf.Tensor, *chain: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, list[tf.Tensor]]:
    """Casts to float32, clips the lengths, and zeroes the potentials of padded steps.

    Zeroing with ``tf.where`` (not a product) keeps garbage past a sequence's end, even NaN or inf, out
    of the results and of their gradients. A time axis shorter than two steps is padded, fully masked,
    to two, so that the recursions always have a first step and a non-empty scan over the later ones
    (an empty ``tf.scan`` fails when the length is unknown at trace time); callers returning ``[B, T]``
    slice it back.

    Returns ``(potentials [B, max(T, 2), N], lengths [B] int32, mask [B, max(T, 2)] bool, chain)``.
    """
    potentials = tf.cast(potentials, tf.float32)
    max_length = tf.shape(potentials)[1]
    potentials = tf.pad(potentials, [[0, 0], [0, tf.maximum(2 - max_length, 0)], [0, 0]])
    lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 0, max_length)
    mask = tf.sequence_mask(lengths, tf.shape(potentials)[1])
    potentials = tf.where(mask[:, :, None], potentials, tf.zeros_like(potentials))
    return potentials, lengths, mask, [tf.cast(weights, tf.float32) for weights in chain]


def _later_steps(potentials: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Steps 1..T-1, time-major for ``tf.scan``: ``([T-1, B, N] potentials, [T-1, B] mask)``."""
    return tf.transpose(potentials[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:])


def _scan_backwards(fn: Callable[[Any, Any], Any], elems: Any, initializer: Any) -> Any:
    """``tf.scan(fn, elems, initializer, reverse=True)``, written as a forward scan over reversed inputs.

    The two compute the same values in TensorFlow, but tf2onnx converts ``reverse=True`` into a loop that
    stacks its outputs in iteration order, i.e. backwards (:mod:`albert_ner.onnx_export` converts the CRF).
    """
    def flip(tensors: Any) -> Any:
        return tf.nest.map_structure(lambda tensor: tf.reverse(tensor, [0]), tensors)

    return flip(tf.scan(fn, flip(elems), initializer=initializer))


def crf_sequence_score(
    potentials: tf.Tensor,
    tags: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tf.Tensor:
    """Unnormalised score of the given tag paths, ``[B]`` float32.

    ``tags`` ``[B, T]`` int; values at padded steps are ignored and may be out of range.
    """
    max_length = tf.shape(potentials)[1]
    potentials, lengths, mask, (transitions, start_transitions, end_transitions) = _prepare(
        potentials, lengths, transitions, start_transitions, end_transitions
    )
    tags = tf.pad(tf.cast(tags, tf.int32), [[0, 0], [0, tf.shape(mask)[1] - max_length]])
    tags = tf.where(mask, tags, 0)
    one_hot = tf.one_hot(tags, tf.shape(transitions)[0]) * tf.cast(mask, tf.float32)[:, :, None]

    unary = tf.reduce_sum(one_hot * potentials, axis=[1, 2])
    pair_counts = tf.einsum("bti,btj->bij", one_hot[:, :-1], one_hot[:, 1:])
    binary = tf.reduce_sum(pair_counts * transitions, axis=[1, 2])
    is_last = tf.one_hot(lengths - 1, tf.shape(mask)[1])
    last_tag = tf.einsum("bt,btn->bn", is_last, one_hot)
    boundary = tf.linalg.matvec(one_hot[:, 0], start_transitions) + tf.linalg.matvec(
        last_tag, end_transitions
    )
    return unary + binary + boundary


def crf_log_norm(
    potentials: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tf.Tensor:
    """Log-partition ``log sum_y exp(score(y))`` over all paths of each length, ``[B]`` float32.

    Forward algorithm; past a sequence's length the previous ``alpha`` is carried unchanged, so the end
    transitions are applied at each sequence's own last step.
    """
    potentials, lengths, mask, (transitions, start_transitions, end_transitions) = _prepare(
        potentials, lengths, transitions, start_transitions, end_transitions
    )

    def step(alpha: tf.Tensor, step_inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        step_potentials, valid = step_inputs
        advanced = tf.reduce_logsumexp(alpha[:, :, None] + transitions, axis=1) + step_potentials
        return tf.where(valid[:, None], advanced, alpha)

    alpha = tf.foldl(step, _later_steps(potentials, mask), initializer=start_transitions + potentials[:, 0])
    log_norm = tf.reduce_logsumexp(alpha + end_transitions, axis=1)
    return tf.where(lengths > 0, log_norm, 0.0)


def crf_log_likelihood(
    potentials: tf.Tensor,
    tags: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tf.Tensor:
    """Log-probability of the given tag paths, ``[B]`` float32; the training loss is its negative mean."""
    chain = (transitions, start_transitions, end_transitions)
    return crf_sequence_score(potentials, tags, lengths, *chain) - crf_log_norm(potentials, lengths, *chain)


def crf_decode(
    potentials: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Viterbi: the best path of each sequence and its score, ``([B, T] int32, [B] float32)``.

    Padded steps get identity backpointers, so one backward pass from the final step walks each
    sequence's best last tag back unchanged to its own last valid step; padded positions are then
    zeroed.
    """
    max_length = tf.shape(potentials)[1]
    potentials, lengths, mask, (transitions, start_transitions, end_transitions) = _prepare(
        potentials, lengths, transitions, start_transitions, end_transitions
    )
    batch_size, num_tags = tf.shape(potentials)[0], tf.shape(potentials)[2]
    identity = tf.broadcast_to(tf.range(num_tags), [batch_size, num_tags])

    def step(
        carried: tuple[tf.Tensor, tf.Tensor], step_inputs: tuple[tf.Tensor, tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        best, _ = carried
        step_potentials, valid = step_inputs
        candidates = best[:, :, None] + transitions
        advanced = tf.reduce_max(candidates, axis=1) + step_potentials
        backpointers = tf.argmax(candidates, axis=1, output_type=tf.int32)
        return (
            tf.where(valid[:, None], advanced, best),
            tf.where(valid[:, None], backpointers, identity),
        )

    first = start_transitions + potentials[:, 0]
    bests, backpointers = tf.scan(step, _later_steps(potentials, mask), initializer=(first, identity))
    final = tf.concat([first[None], bests[-1:]], axis=0)[-1] + end_transitions
    last_tag = tf.argmax(final, axis=1, output_type=tf.int32)

    def walk_back(tag: tf.Tensor, step_backpointers: tf.Tensor) -> tf.Tensor:
        return tf.gather(step_backpointers, tag, batch_dims=1)

    earlier_tags = _scan_backwards(walk_back, backpointers, last_tag)
    tags = tf.concat([tf.transpose(earlier_tags), last_tag[:, None]], axis=1)
    tags = tf.where(mask, tags, 0)[:, :max_length]
    scores = tf.where(lengths > 0, tf.reduce_max(final, axis=1), 0.0)
    return tags, scores


class PathProbabilities(NamedTuple):
    """Log-probabilities along one given path ``y`` of each sequence, ``[B, T]`` float32 each, 0 past lengths.

    The posterior of a linear-chain CRF is itself a Markov chain, so the probability that steps
    ``s..e-1`` carry exactly ``y_s..y_{e-1}`` is, exactly,
    ``exp(marginal[s] + sum(conditional[s+1:e]) + closing[e-1])``, and the whole path's probability is
    ``exp(sum(conditional))``. Every term is a local, normalised quantity, so nothing subtracts two large
    log-partitions and float32 keeps its precision however long the sequence.
    """

    #: ``log P(y_t)``: the marginal of the path's tag at each step.
    marginal: tf.Tensor
    #: ``log P(y_t | y_{t-1})`` for ``t > 0``, and ``log P(y_0)`` at step 0.
    conditional: tf.Tensor
    #: ``log P(y_{t+1} is not a continuation of y_t | y_t)``, with ``continues`` (see
    #: :func:`crf_path_probabilities`); 0 at each sequence's last step and when no ``continues`` is given.
    closing: tf.Tensor


def _log_normalize(scores: tf.Tensor) -> tf.Tensor:
    """``scores`` less their log-sum-exp over the last axis; a row of only ``-inf`` stays ``-inf``."""
    total = tf.reduce_logsumexp(scores, axis=-1, keepdims=True)
    return scores - tf.where(tf.math.is_finite(total), total, 0.0)


def crf_forward_backward(
    potentials: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Forward and backward log-messages, each normalised to log-sum-exp 0 at every step, ``[B, T, N]``.

    ``alpha[t, j]`` is, up to a per-step constant, the log-sum over the prefixes ending in tag ``j`` at
    step ``t`` (start transition and potentials included); ``beta[t, i]`` the log-sum over the suffixes
    after a tag ``i`` at ``t`` (end transition included). Normalising at each step keeps them of order
    one, which is what lets :func:`crf_path_probabilities` work in float32. Past a sequence's length
    ``alpha`` is carried and ``beta`` is the normalised end transitions; disallowed entries (``-inf``)
    stay ``-inf`` and never produce NaN.
    """
    max_length = tf.shape(potentials)[1]
    potentials, lengths, mask, (transitions, start_transitions, end_transitions) = _prepare(
        potentials, lengths, transitions, start_transitions, end_transitions
    )
    later_potentials, later_mask = _later_steps(potentials, mask)

    def forward(alpha: tf.Tensor, step_inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        step_potentials, valid = step_inputs
        advanced = _log_normalize(tf.reduce_logsumexp(alpha[:, :, None] + transitions, axis=1) + step_potentials)
        return tf.where(valid[:, None], advanced, alpha)

    first = _log_normalize(start_transitions + potentials[:, 0])
    alphas = tf.scan(forward, (later_potentials, later_mask), initializer=first)
    alpha = tf.transpose(tf.concat([first[None], alphas], axis=0), [1, 0, 2])

    final = tf.broadcast_to(_log_normalize(end_transitions), tf.shape(first))

    def backward(beta: tf.Tensor, step_inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        """From ``beta`` at step ``t + 1`` (with that step's potentials and validity) to ``beta`` at ``t``."""
        following_potentials, following_valid = step_inputs
        ahead = (following_potentials + beta)[:, None, :] + transitions
        return tf.where(following_valid[:, None], _log_normalize(tf.reduce_logsumexp(ahead, axis=2)), final)

    betas = _scan_backwards(backward, (later_potentials, later_mask), final)
    beta = tf.transpose(tf.concat([betas, final[None]], axis=0), [1, 0, 2])
    return alpha[:, :max_length], beta[:, :max_length]


def crf_marginals(
    potentials: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
) -> tf.Tensor:
    """``P(y_t = j)`` under the CRF, ``[B, T, N]`` float32; rows past a sequence's length are 0."""
    alpha, beta = crf_forward_backward(potentials, lengths, transitions, start_transitions, end_transitions)
    valid = tf.sequence_mask(lengths, tf.shape(potentials)[1])
    return tf.where(valid[:, :, None], tf.exp(_log_normalize(alpha + beta)), 0.0)


def crf_path_probabilities(
    potentials: tf.Tensor,
    lengths: tf.Tensor,
    transitions: tf.Tensor,
    start_transitions: tf.Tensor,
    end_transitions: tf.Tensor,
    tags: tf.Tensor,
    continues: np.ndarray | tf.Tensor | None = None,
) -> PathProbabilities:
    """The :class:`PathProbabilities` of the paths ``tags`` ``[B, T]`` (values past lengths ignored).

    ``continues`` ``[N, N]`` bool, when given, marks the tags ``j`` that would extend an entity ending in
    tag ``i`` (BIO: ``I-X`` after ``B-X``/``I-X``), so that a span's probability is that of *exactly* this
    entity: its tags, and the next tag not carrying it on. Schemes with explicit ends (BIOES, BMES) need
    none under the allowed-transition masks, but giving it costs nothing.
    """
    alpha, beta = crf_forward_backward(potentials, lengths, transitions, start_transitions, end_transitions)
    potentials = tf.cast(potentials, tf.float32)
    transitions = tf.cast(transitions, tf.float32)
    max_length = tf.shape(potentials)[1]
    valid = tf.sequence_mask(lengths, max_length)
    tags = tf.where(valid, tf.cast(tags, tf.int32), 0)
    previous = tf.pad(tags[:, :-1], [[0, 0], [1, 0]])

    marginals = _log_normalize(alpha + beta)
    # next_tag[b, t, j] = log P(y_t = j | y_{t-1} = previous[b, t]) for t > 0.
    next_tag = _log_normalize(tf.gather(transitions, previous) + potentials + beta)
    marginal = tf.gather(marginals, tags, batch_dims=2)
    following = tf.gather(next_tag, tags, batch_dims=2)
    is_first = tf.range(max_length)[None, :] == 0
    conditional = tf.where(is_first, marginal, following)

    closing = tf.zeros_like(marginal)
    if continues is not None:
        stops = ~tf.gather(tf.convert_to_tensor(continues, tf.bool), tags)  # [B, T, N]: after y_t
        ahead = tf.pad(next_tag[:, 1:], [[0, 0], [0, 1], [0, 0]])
        closing = tf.reduce_logsumexp(tf.where(stops, ahead, -np.inf), axis=2)
        has_next = tf.sequence_mask(lengths - 1, max_length)
        closing = tf.where(has_next, closing, 0.0)
    return PathProbabilities(*(tf.where(valid, values, 0.0) for values in (marginal, conditional, closing)))


AllowedTransitions = tuple[np.ndarray, np.ndarray, np.ndarray]


@keras.saving.register_keras_serializable(package="albert_ner")
class CRF(keras.layers.Layer):
    """Trainable CRF over ``num_tags`` tags, optionally restricted to the transitions a tag scheme allows.

    ``allowed`` is ``(start_allowed [N], transition_allowed [N, N] from->to, end_allowed [N])`` booleans,
    as ``LabelMap.allowed_transitions()`` returns them. Disallowed entries are pushed down by a constant
    on top of the trainable weights (``TRAINING_PENALTY`` in the likelihood, ``DECODING_PENALTY`` in
    decoding): training spends no probability on them and decoding never emits them.

    The weights are float32 even under a mixed-precision policy, and every method returns float32.
    ``call`` decodes, so the layer can end an inference model.
    """

    def __init__(
        self,
        num_tags: int,
        allowed: AllowedTransitions | Sequence[Sequence] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_tags, bool) or not isinstance(num_tags, (int, np.integer)) or num_tags < 1:
            raise ValueError(f"CRF num_tags must be a positive integer, received num_tags={num_tags!r}")
        self.num_tags = int(num_tags)
        self.allowed = None if allowed is None else _check_allowed(allowed, self.num_tags)
        self.transitions = self._float32_weight((self.num_tags, self.num_tags), "transitions")
        self.start_transitions = self._float32_weight((self.num_tags,), "start_transitions")
        self.end_transitions = self._float32_weight((self.num_tags,), "end_transitions")
        self.built = True

    def _float32_weight(self, shape: tuple[int, ...], name: str) -> keras.Variable:
        """A zero-initialised weight that stays float32 when read under a mixed-precision policy."""
        return self.add_weight(shape=shape, initializer="zeros", dtype="float32", autocast=False, name=name)

    def _chain(self, penalty: float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The (transitions, start, end) weights with ``penalty`` added where the scheme forbids."""
        weights = (self.transitions, self.start_transitions, self.end_transitions)
        if self.allowed is None:
            return weights
        start_allowed, transition_allowed, end_allowed = self.allowed
        return tuple(
            w + np.where(allowed, 0.0, penalty).astype(np.float32)
            for w, allowed in zip(weights, (transition_allowed, start_allowed, end_allowed), strict=True)
        )

    def log_likelihood(self, potentials: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Log-probability of the gold ``tags`` ``[B, T]``, ``[B]`` float32 (0 for empty sequences)."""
        return crf_log_likelihood(potentials, tags, lengths, *self._chain(TRAINING_PENALTY))

    def decode(self, potentials: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Best allowed paths ``[B, T]`` int32 (0 past each length) and their scores ``[B]`` float32."""
        return crf_decode(potentials, lengths, *self._chain(DECODING_PENALTY))

    def path_probabilities(
        self,
        potentials: tf.Tensor,
        lengths: tf.Tensor,
        tags: tf.Tensor,
        continues: np.ndarray | None = None,
        temperature: float = 1.0,
    ) -> PathProbabilities:
        """Log-probabilities along ``tags`` under the constrained CRF; see :func:`crf_path_probabilities`.

        With the decoding masks (``-inf``), a disallowed path has probability exactly 0. ``temperature``
        divides every path's score (potentials and transitions alike): ``P_T(y) ~ exp(score(y) / T)``,
        which softens (T > 1) or sharpens (T < 1) the distribution without changing the best path.
        """
        transitions, start, end = (weights / temperature for weights in self._chain(DECODING_PENALTY))
        return crf_path_probabilities(tf.cast(potentials, tf.float32) / temperature, lengths, transitions, start,
                                      end, tags, continues)

    def marginals(self, potentials: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Per-step tag marginals ``[B, T, N]`` under the constrained CRF; see :func:`crf_marginals`."""
        return crf_marginals(potentials, lengths, *self._chain(DECODING_PENALTY))

    def call(self, potentials: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.decode(potentials, lengths)

    def compute_output_spec(
        self, potentials: keras.KerasTensor, lengths: keras.KerasTensor
    ) -> tuple[keras.KerasTensor, keras.KerasTensor]:
        batch_size, max_length = potentials.shape[0], potentials.shape[1]
        return (
            keras.KerasTensor((batch_size, max_length), dtype="int32"),
            keras.KerasTensor((batch_size,), dtype="float32"),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config["num_tags"] = self.num_tags
        config["allowed"] = None if self.allowed is None else [mask.tolist() for mask in self.allowed]
        return config


def _check_allowed(allowed: AllowedTransitions | Sequence[Sequence], num_tags: int) -> AllowedTransitions:
    """Converts the allowed masks to bool arrays, checking their shapes against ``num_tags``."""
    if len(allowed) != 3:
        raise ValueError(
            "CRF allowed must be (start_allowed, transition_allowed, end_allowed), "
            f"received {len(allowed)} items"
        )
    start, transition, end = (np.asarray(mask, dtype=bool) for mask in allowed)
    masks = (start, transition, end)
    expected = ((num_tags,), (num_tags, num_tags), (num_tags,))
    for name, mask, shape in zip(("start_allowed", "transition_allowed", "end_allowed"), masks, expected, strict=True):
        if mask.shape != shape:
            raise ValueError(
                f"CRF allowed {name} must have shape {shape} for num_tags={num_tags}, "
                f"found shape {mask.shape}"
            )
    return masks
