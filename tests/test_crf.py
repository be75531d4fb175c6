"""The CRF against brute-force enumeration of every tag path (N = 4 tags, T <= 5 steps).

Each case mixes lengths inside one batch: full length, 1, 0 and in between, with random values in the
padding, so that the masking is tested by the same comparisons as the arithmetic.
"""

from __future__ import annotations

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.modeling.crf import CRF, crf_decode, crf_log_likelihood, crf_log_norm, crf_sequence_score

LENGTHS = np.array([5, 1, 3, 0, 2, 4], dtype=np.int32)
MAX_LENGTH = 5
NUM_TAGS = 4
TOLERANCE = 1e-5


def random_case(seed: int, num_tags: int = NUM_TAGS) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """float32 potentials [B, T, N] and (transitions, start, end), values of order 1."""
    rng = np.random.default_rng(seed)
    potentials = rng.normal(size=(len(LENGTHS), MAX_LENGTH, num_tags)).astype(np.float32)
    shapes = [(num_tags, num_tags), (num_tags,), (num_tags,)]
    chain = tuple(rng.normal(size=shape).astype(np.float32) for shape in shapes)
    return potentials, chain


def enumerate_paths(
    potentials: np.ndarray,
    length: int,
    chain: tuple[np.ndarray, ...],
    allowed: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every path of ``length`` steps (only the allowed ones, when masks are given) and its float64 score."""
    transitions, start, end = (np.asarray(weights, np.float64) for weights in chain)
    num_tags = potentials.shape[-1]
    paths = np.array(list(itertools.product(range(num_tags), repeat=length)), dtype=np.int64)
    scores = (
        start[paths[:, 0]]
        + potentials[np.arange(length), paths].astype(np.float64).sum(axis=1)
        + transitions[paths[:, :-1], paths[:, 1:]].sum(axis=1)
        + end[paths[:, -1]]
    )
    if allowed is not None:
        start_allowed, transition_allowed, end_allowed = allowed
        keep = start_allowed[paths[:, 0]] & end_allowed[paths[:, -1]]
        keep &= transition_allowed[paths[:, :-1], paths[:, 1:]].all(axis=1)
        paths, scores = paths[keep], scores[keep]
    return paths, scores


def assert_close(actual: object, expected: object, atol: float = TOLERANCE) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def log_sum_exp(scores: np.ndarray) -> float:
    top = scores.max()
    return float(top + np.log(np.exp(scores - top).sum()))


def scheme_masks(tags: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, transition, end) allowed masks for BIO or BIOES tags, written out from the scheme's rules."""

    def opens(tag: str) -> bool:  # may follow O, an entity's last tag, or the sequence start
        return tag == "O" or tag[0] in "BS"

    def continues(previous: str, tag: str) -> bool:  # I-X / E-X after B-X or I-X of the same type
        return previous[0] in "BI" and previous[1:] == tag[1:]

    bioes = any(tag[0] in "ES" for tag in tags)
    start = np.array([opens(tag) for tag in tags])
    def may_follow(previous: str, tag: str) -> bool:
        if tag[0] in "IE":
            return continues(previous, tag)
        return opens(tag) and not (bioes and previous[0] in "BI")  # bioes closes B-/I- with I-/E- only

    transition = np.array([[may_follow(previous, tag) for tag in tags] for previous in tags])
    end = np.array([not (bioes and tag[0] in "BI") for tag in tags])
    return start, transition, end


BIO_TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]
BIOES_TAGS = ["O", "B-A", "I-A", "E-A", "S-A"]


def test_scheme_masks_follow_the_rules() -> None:
    start, transition, end = scheme_masks(BIO_TAGS)
    assert start.tolist() == [True, True, False, True, False]
    assert transition[0].tolist() == [True, True, False, True, False]  # O -> I-X forbidden
    assert transition[1].tolist() == [True, True, True, True, False]  # B-A -> I-B forbidden
    assert end.all()
    start, transition, end = scheme_masks(BIOES_TAGS)
    assert start.tolist() == [True, True, False, False, True]
    assert transition[1].tolist() == [False, False, True, True, False]  # B-A must go on
    assert transition[3].tolist() == [True, True, False, False, True]  # E-A closes
    assert end.tolist() == [True, False, False, True, True]


def test_log_norm_and_sequence_score_match_brute_force() -> None:
    potentials, chain = random_case(seed=0)
    rng = np.random.default_rng(1)
    tags = rng.integers(0, NUM_TAGS, size=LENGTHS.shape + (MAX_LENGTH,)).astype(np.int32)
    tags[~(np.arange(MAX_LENGTH) < LENGTHS[:, None])] = 99  # out of range, but padding: ignored

    log_norm = crf_log_norm(potentials, LENGTHS, *chain).numpy()
    score = crf_sequence_score(potentials, tags, LENGTHS, *chain).numpy()
    log_likelihood = crf_log_likelihood(potentials, tags, LENGTHS, *chain).numpy()

    expected_log_norm, expected_score = [], []
    for b, length in enumerate(LENGTHS):
        if length == 0:
            expected_log_norm.append(0.0)
            expected_score.append(0.0)
            continue
        paths, scores = enumerate_paths(potentials[b], length, chain)
        expected_log_norm.append(log_sum_exp(scores))
        expected_score.append(scores[np.flatnonzero((paths == tags[b, :length]).all(axis=1))[0]])
    assert log_norm.dtype == score.dtype == np.float32
    assert_close(log_norm, expected_log_norm)
    assert_close(score, expected_score)
    assert_close(log_likelihood, np.subtract(expected_score, expected_log_norm))


def test_viterbi_matches_brute_force() -> None:
    potentials, chain = random_case(seed=2)
    tags, scores = crf_decode(potentials, LENGTHS, *chain)
    assert tags.dtype == tf.int32 and tags.shape == (len(LENGTHS), MAX_LENGTH) and scores.dtype == tf.float32
    for b, length in enumerate(LENGTHS):
        assert not tags[b, length:].numpy().any(), "padding decodes to tag 0"
        if length == 0:
            assert scores[b] == 0.0
            continue
        paths, path_scores = enumerate_paths(potentials[b], length, chain)
        np.testing.assert_array_equal(tags[b, :length], paths[path_scores.argmax()])
        assert_close(scores[b], path_scores.max())


def test_log_norm_gradient_is_the_brute_force_marginals() -> None:
    """d log Z / d weights = expected counts under the model, which enumeration gives exactly."""
    potentials, chain = random_case(seed=3)
    variables = [tf.Variable(potentials)] + [tf.Variable(weights) for weights in chain]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(crf_log_norm(variables[0], LENGTHS, *variables[1:]))
    gradients = [g.numpy() for g in tape.gradient(total, variables)]

    expected = [np.zeros(weights.shape) for weights in (potentials, *chain)]
    for b, length in enumerate(LENGTHS):
        if length == 0:
            continue
        paths, scores = enumerate_paths(potentials[b], length, chain)
        probabilities = np.exp(scores - log_sum_exp(scores))
        for step in range(length):
            np.add.at(expected[0][b, step], paths[:, step], probabilities)
        for step in range(1, length):
            np.add.at(expected[1], (paths[:, step - 1], paths[:, step]), probabilities)
        np.add.at(expected[2], paths[:, 0], probabilities)
        np.add.at(expected[3], paths[:, -1], probabilities)
    for gradient, marginal in zip(gradients, expected, strict=True):
        assert_close(gradient, marginal)


def test_negative_log_likelihood_gradient_matches_finite_differences() -> None:
    potentials, (transitions, start, end) = random_case(seed=4)
    tags = np.random.default_rng(5).integers(0, NUM_TAGS, size=LENGTHS.shape + (MAX_LENGTH,))

    def loss(potentials: tf.Tensor, transitions: tf.Tensor) -> tf.Tensor:
        return -tf.reduce_mean(crf_log_likelihood(potentials, tags, LENGTHS, transitions, start, end))

    # float32 throughout: a wide step keeps rounding (~1e-7 / delta) below the tolerance.
    theoretical, numerical = tf.test.compute_gradient(loss, [potentials, transitions], delta=1e-2)
    for analytic, estimate in zip(theoretical, numerical, strict=True):
        assert_close(analytic, estimate, atol=2e-4)
    assert np.abs(theoretical[0]).max() > 0.05 and np.abs(theoretical[1]).max() > 0.05


def test_padding_is_ignored_even_when_it_holds_garbage() -> None:
    potentials, chain = random_case(seed=6)
    tags = np.random.default_rng(7).integers(0, NUM_TAGS, size=LENGTHS.shape + (MAX_LENGTH,)).astype(np.int32)
    padded = np.concatenate([potentials, np.zeros_like(potentials)], axis=1)
    padded_tags = np.concatenate([tags, np.full_like(tags, -1)], axis=1)
    padding = ~(np.arange(2 * MAX_LENGTH) < LENGTHS[:, None])
    padded[padding] = np.array([np.nan, np.inf, -np.inf, 1e6], np.float32)

    variable = tf.Variable(padded)
    with tf.GradientTape() as tape:
        log_likelihood = crf_log_likelihood(variable, padded_tags, LENGTHS, *chain)
    gradient = tape.gradient(log_likelihood, variable).numpy()
    decoded, scores = crf_decode(padded, LENGTHS, *chain)

    assert_close(log_likelihood, crf_log_likelihood(potentials, tags, LENGTHS, *chain), atol=1e-6)
    expected_decoded, expected_scores = crf_decode(potentials, LENGTHS, *chain)
    np.testing.assert_array_equal(decoded[:, :MAX_LENGTH], expected_decoded)
    assert not decoded[:, MAX_LENGTH:].numpy().any()
    assert_close(scores, expected_scores, atol=1e-6)
    assert np.isfinite(gradient).all() and not gradient[padding].any()


def test_empty_sequences_and_empty_batches() -> None:
    _, chain = random_case(seed=8)
    for shape in [(3, 4, NUM_TAGS), (3, 0, NUM_TAGS), (0, 4, NUM_TAGS)]:
        potentials = np.full(shape, 5.0, np.float32)
        lengths = np.zeros(shape[0], np.int32)
        tags = np.ones(shape[:2], np.int32)
        log_likelihood = crf_log_likelihood(potentials, tags, lengths, *chain)
        np.testing.assert_array_equal(log_likelihood, np.zeros(shape[0]))
        decoded, scores = crf_decode(potentials, lengths, *chain)
        assert decoded.shape == shape[:2] and not decoded.numpy().any() and not scores.numpy().any()


def scheme_crf(tags: list[str], seed: int) -> tuple[CRF, np.ndarray, tuple[np.ndarray, ...]]:
    """A CRF layer constrained to the scheme of ``tags``, with random weights, and potentials for it."""
    potentials, chain = random_case(seed, num_tags=len(tags))
    crf = CRF(len(tags), allowed=scheme_masks(tags))
    for variable, weights in zip((crf.transitions, crf.start_transitions, crf.end_transitions), chain, strict=True):
        variable.assign(weights)
    return crf, potentials, chain


def assert_follows_scheme(paths: np.ndarray, lengths: np.ndarray, allowed: tuple[np.ndarray, ...]) -> None:
    start_allowed, transition_allowed, end_allowed = allowed
    for path, length in zip(paths, lengths, strict=True):
        if length == 0:
            continue
        path = path[:length]
        assert start_allowed[path[0]] and end_allowed[path[-1]], path
        assert transition_allowed[path[:-1], path[1:]].all(), path


@pytest.mark.parametrize("tags", [BIO_TAGS, BIOES_TAGS], ids=["bio", "bioes"])
def test_constrained_crf_only_emits_allowed_paths(tags: list[str]) -> None:
    """Potentials push hard towards I-/E- tags everywhere; the layer must still obey the scheme."""
    crf, potentials, chain = scheme_crf(tags, seed=9)
    allowed = crf.allowed
    strong = potentials.copy()
    strong[..., [i for i, tag in enumerate(tags) if tag[0] in "IE"]] += 50.0

    for case in (potentials, strong, 1e6 * strong):
        decoded, scores = crf.decode(case, LENGTHS)
        assert_follows_scheme(decoded.numpy(), LENGTHS, allowed)
        assert np.isfinite(scores.numpy()).all()

    # Against enumeration of the allowed paths only: decoding and the likelihood both live on them.
    decoded, scores = crf.decode(potentials, LENGTHS)
    log_likelihood = crf.log_likelihood(potentials, decoded, LENGTHS).numpy()
    for b in np.flatnonzero(LENGTHS):
        length = LENGTHS[b]
        paths, path_scores = enumerate_paths(potentials[b], length, chain, allowed)
        np.testing.assert_array_equal(decoded[b, :length], paths[path_scores.argmax()])
        assert_close(scores[b], path_scores.max())
        assert_close(log_likelihood[b], path_scores.max() - log_sum_exp(path_scores))


@pytest.fixture
def mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def test_mixed_float16_potentials_give_float32_results(mixed_precision: None) -> None:
    crf, potentials, _ = scheme_crf(BIO_TAGS, seed=10)
    assert crf.compute_dtype == "float16"
    assert all(weight.dtype == "float32" for weight in crf.weights) and len(crf.trainable_weights) == 3
    half = tf.constant(potentials, tf.float16)
    gold = crf.decode(potentials, LENGTHS)[0]

    log_likelihood = crf.log_likelihood(half, gold, LENGTHS)
    decoded, scores = crf(half, LENGTHS)  # through Layer.__call__, which casts inputs to float16
    assert log_likelihood.dtype == scores.dtype == tf.float32 and decoded.dtype == tf.int32
    rounded = tf.cast(half, tf.float32)
    assert_close(log_likelihood, crf.log_likelihood(rounded, gold, LENGTHS))
    assert_close(log_likelihood, crf.log_likelihood(potentials, gold, LENGTHS), atol=1e-2)
    expected_decoded, expected_scores = crf.decode(rounded, LENGTHS)
    np.testing.assert_array_equal(decoded, expected_decoded)
    assert_close(scores, expected_scores)


def test_xla_compiled_results_equal_eager() -> None:
    """One trace with the batch and time axes unknown; XLA then compiles it for each concrete shape."""
    crf, potentials, _ = scheme_crf(BIOES_TAGS, seed=11)
    signature = [tf.TensorSpec([None, None, len(BIOES_TAGS)], tf.float32), tf.TensorSpec([None], tf.int32)]

    @tf.function(jit_compile=True, input_signature=signature + [tf.TensorSpec([None, None], tf.int32)])
    def compiled_loss(potentials: tf.Tensor, lengths: tf.Tensor, tags: tf.Tensor) -> tf.Tensor:
        return -crf.log_likelihood(potentials, tags, lengths)

    compiled_decode = tf.function(crf.decode, jit_compile=True, input_signature=signature)
    for max_length in (MAX_LENGTH, 2):
        case, lengths = potentials[:, :max_length], np.minimum(LENGTHS, max_length)
        tags, scores = crf.decode(case, lengths)
        compiled_tags, compiled_scores = compiled_decode(case, lengths)
        np.testing.assert_array_equal(compiled_tags, tags)
        assert_close(compiled_scores, scores)
        assert_close(compiled_loss(case, lengths, tags), -crf.log_likelihood(case, tags, lengths))


def test_layer_log_likelihood_trains() -> None:
    """A few SGD steps on the CRF weights alone raise the likelihood of fixed gold paths."""
    allowed = scheme_masks(BIO_TAGS)
    crf = CRF(len(BIO_TAGS), allowed=allowed)
    rng = np.random.default_rng(12)
    potentials = rng.normal(size=(len(LENGTHS), MAX_LENGTH, len(BIO_TAGS))).astype(np.float32)
    gold = np.array([[1, 2, 2, 0, 3], [0] * 5, [3, 4, 0, 0, 0], [0] * 5, [1, 2, 0, 0, 0], [0, 1, 2, 0, 0]])
    assert_follows_scheme(gold, LENGTHS, allowed)
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    history = []
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(crf.log_likelihood(potentials, gold, LENGTHS))
        optimizer.apply(tape.gradient(loss, crf.trainable_weights), crf.trainable_weights)
        history.append(float(loss))
    assert all(later < earlier for earlier, later in itertools.pairwise(history)), history
    assert history[-1] < 0.8 * history[0], history


def test_get_config_round_trip_and_validation() -> None:
    allowed = scheme_masks(BIOES_TAGS)
    crf = CRF(len(BIOES_TAGS), allowed=allowed, name="crf")
    config = json.loads(json.dumps(crf.get_config()))
    restored = CRF.from_config(config)
    assert restored.num_tags == len(BIOES_TAGS) and restored.name == "crf"
    for original, copy in zip(allowed, restored.allowed, strict=True):
        np.testing.assert_array_equal(original, copy)
    unconstrained = CRF.from_config(json.loads(json.dumps(CRF(3).get_config())))
    assert unconstrained.allowed is None

    wrong_shape = r"transition_allowed must have shape \(5, 5\) .* found shape \(5, 4\)"
    with pytest.raises(ValueError, match=wrong_shape):
        CRF(5, allowed=(allowed[0], allowed[1][:, :4], allowed[2]))
    with pytest.raises(ValueError, match="num_tags=0"):
        CRF(0)


def test_decode_traced_with_unknown_length_handles_one_step_batches() -> None:
    """A batch of one-character sentences once crashed the traced Viterbi (an empty scan)."""
    rng = np.random.default_rng(11)
    transitions, start, end = (tf.constant(rng.normal(size=shape), tf.float32) for shape in ((3, 3), (3,), (3,)))
    decode = tf.function(
        lambda potentials, lengths: crf_decode(potentials, lengths, transitions, start, end),
        input_signature=[tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([None], tf.int32)])
    potentials = rng.normal(size=(2, 1, 3)).astype(np.float32)
    tags, scores = decode(potentials, np.array([1, 1], np.int32))
    expected = np.argmax(start.numpy() + potentials[:, 0] + end.numpy(), axis=1)
    assert tags.shape == (2, 1) and tags.numpy()[:, 0].tolist() == expected.tolist()
    empty_tags, _ = decode(np.zeros((2, 0, 3), np.float32), np.array([0, 0], np.int32))
    assert empty_tags.shape == (2, 0)
