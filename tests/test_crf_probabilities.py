"""Forward-backward marginals and path / span probabilities against brute-force enumeration of every path.

The CRFs are small (5 tags, at most 5 steps: 3,125 paths) with random weights and the allowed-transition
masks of BIO and BIOES; batches mix lengths (full, 1, 0, in between) with garbage in the padding.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.modeling.crf import crf_marginals, crf_path_probabilities
from test_crf import BIO_TAGS, BIOES_TAGS, LENGTHS, MAX_LENGTH, assert_close, enumerate_paths, log_sum_exp, scheme_crf


def continuation_mask(tags: list[str]) -> np.ndarray:
    """continues[i, j]: tag j after tag i carries the same entity on (I-/E- after B-/I- of its type)."""
    return np.array([[previous[0] in "BI" and tag[0] in "IE" and previous[1:] == tag[1:] for tag in tags]
                     for previous in tags])


def brute_force(potentials: np.ndarray, length: int, crf) -> tuple[np.ndarray, np.ndarray]:
    """The allowed paths of ``length`` steps and their probabilities (float64)."""
    chain = tuple(w.numpy() for w in (crf.transitions, crf.start_transitions, crf.end_transitions))
    paths, scores = enumerate_paths(potentials, length, chain, crf.allowed)
    return paths, np.exp(scores - log_sum_exp(scores))


def check_against_enumeration(crf, potentials: np.ndarray, computed_potentials: tf.Tensor, tags: list[str],
                              atol: float = 1e-5) -> int:
    """Compare marginals, path and every span's probability; returns how many spans were compared."""
    continues = continuation_mask(tags)
    decoded, _ = crf.decode(computed_potentials, LENGTHS)
    rng = np.random.default_rng(0)
    marginals = crf.marginals(computed_potentials, LENGTHS).numpy()
    assert marginals.dtype == np.float32
    compared = 0
    for b, length in enumerate(LENGTHS):
        if length == 0:
            assert not marginals[b].any()
            continue
        paths, probabilities = brute_force(potentials[b], length, crf)
        expected_marginals = np.zeros((length, len(tags)))
        for step in range(length):
            np.add.at(expected_marginals[step], paths[:, step], probabilities)
        assert_close(marginals[b, :length], expected_marginals, atol)
        assert not marginals[b, length:].any()

        # The Viterbi path, and another allowed path drawn at random: any path, not only the best.
        for path in (decoded[b, :length].numpy(), paths[rng.integers(len(paths))]):
            padded = decoded.numpy().copy()
            padded[b, :length] = path
            padded[b, length:] = 77  # past the length: never read
            result = crf.path_probabilities(computed_potentials, LENGTHS, padded, continues)
            marginal, conditional, closing = (values.numpy()[b] for values in result)
            matches = (paths == path).all(axis=1)
            assert_close(np.exp(conditional[:length].sum()), probabilities[matches].sum(), atol)
            for start in range(length):
                for end in range(start + 1, length + 1):
                    carries = (paths[:, start:end] == path[start:end]).all(axis=1)
                    if end < length:
                        carries &= ~continues[path[end - 1], paths[:, end]]
                    span = marginal[start] + conditional[start + 1:end].sum() + closing[end - 1]
                    assert_close(np.exp(span), probabilities[carries].sum(), atol)
                    compared += 1
    return compared


@pytest.mark.parametrize("tags", [BIO_TAGS, BIOES_TAGS], ids=["bio", "bioes"])
@pytest.mark.parametrize("seed", [20, 21])
def test_marginals_and_span_probabilities_match_brute_force(tags: list[str], seed: int) -> None:
    crf, potentials, _ = scheme_crf(tags, seed=seed)
    garbage = potentials.copy()
    garbage[~(np.arange(MAX_LENGTH) < LENGTHS[:, None])] = np.nan  # padding is never read
    assert check_against_enumeration(crf, potentials, tf.constant(garbage), tags) > 30


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    keras.config.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("tags", [BIO_TAGS, BIOES_TAGS], ids=["bio", "bioes"])
def test_probabilities_under_mixed_precision_are_exact_for_the_rounded_potentials(mixed_policy: str,
                                                                                  tags: list[str]) -> None:
    """Half-precision potentials, as a mixed-precision tagger would hand them over: all arithmetic is
    float32, so the results are exact (to float32) for the potentials as rounded."""
    crf, potentials, _ = scheme_crf(tags, seed=22)
    half = tf.constant(potentials, mixed_policy.removeprefix("mixed_"))
    rounded = tf.cast(half, tf.float32).numpy()
    assert check_against_enumeration(crf, rounded, half, tags) > 30
    assert crf.path_probabilities(half, LENGTHS, crf.decode(half, LENGTHS)[0]).marginal.dtype == tf.float32


def test_disallowed_paths_have_probability_zero_and_long_sequences_stay_finite() -> None:
    crf, potentials, _ = scheme_crf(BIOES_TAGS, seed=23)
    invalid = np.zeros((len(LENGTHS), MAX_LENGTH), np.int32)
    invalid[:, 0] = BIOES_TAGS.index("I-A")  # an inside tag cannot open a sentence
    conditional = crf.path_probabilities(potentials, LENGTHS, invalid).conditional.numpy()
    assert np.all(np.exp(conditional.sum(axis=1))[LENGTHS > 0] == 0.0)

    # 400 steps of large potentials: the log-partition is in the thousands, the probabilities still exact
    # to float32 because nothing subtracts it.
    rng = np.random.default_rng(24)
    long_potentials = (20 * rng.normal(size=(2, 400, len(BIOES_TAGS)))).astype(np.float32)
    lengths = np.array([400, 250], np.int32)
    tags, _ = crf.decode(long_potentials, lengths)
    result = crf.path_probabilities(long_potentials, lengths, tags, continuation_mask(BIOES_TAGS))
    path_log_probability = result.conditional.numpy().sum(axis=1)
    chain = [w.numpy().astype(np.float64) for w in (crf.transitions, crf.start_transitions, crf.end_transitions)]
    for b, length in enumerate(lengths):
        path = tags[b, :length].numpy()
        transitions, start, end = chain
        score = (start[path[0]] + long_potentials[b, np.arange(length), path].astype(np.float64).sum()
                 + transitions[path[:-1], path[1:]].sum() + end[path[-1]])
        expected = score - float64_log_norm(long_potentials[b, :length], chain, crf.allowed)
        assert abs(path_log_probability[b] - expected) < 1e-4 * max(1.0, abs(expected))
    marginals = crf_marginals(long_potentials, lengths, *crf._chain(-np.inf)).numpy()
    assert np.isfinite(marginals).all()
    assert_close(marginals[0].sum(axis=1), np.ones(400))
    assert crf_path_probabilities(long_potentials, lengths, *crf._chain(-np.inf), tags).closing.numpy().max() == 0


def float64_log_norm(potentials: np.ndarray, chain: list[np.ndarray], allowed) -> float:
    """The forward algorithm in float64 numpy, with the masks as -inf."""
    transitions, start, end = (np.where(mask, weights, -np.inf)
                               for weights, mask in zip(chain, (allowed[1], allowed[0], allowed[2]), strict=True))
    alpha = start + potentials[0].astype(np.float64)
    for step in potentials[1:]:
        alpha = np.logaddexp.reduce(alpha[:, None] + transitions, axis=0) + step
    return float(np.logaddexp.reduce(alpha + end))


def test_temperature_divides_every_path_score() -> None:
    crf, potentials, _ = scheme_crf(BIOES_TAGS, seed=25)
    tags, _ = crf.decode(potentials, LENGTHS)
    for temperature in (0.5, 3.0):
        conditional = crf.path_probabilities(potentials, LENGTHS, tags, temperature=temperature).conditional.numpy()
        for b in np.flatnonzero(LENGTHS):
            length = LENGTHS[b]
            chain = tuple(w.numpy() for w in (crf.transitions, crf.start_transitions, crf.end_transitions))
            paths, scores = enumerate_paths(potentials[b], length, chain, crf.allowed)
            scaled = scores / temperature
            best = (paths == tags[b, :length].numpy()).all(axis=1)
            assert_close(np.exp(conditional[b, :length].sum()), np.exp(scaled[best] - log_sum_exp(scaled))[0])
