"""The ALBERT encoder against independent references, for both checkpoint families.

Weights are written as TF1 checkpoints with the real variable names (tests/albert_fixtures.py) and loaded
through the package's loader, so these tests pin the forward pass and the name tables together:

* Google-format encoder vs Hugging Face ``transformers.AlbertModel`` (PyTorch) given the same weights.
* brightmart albert_zh encoder vs a NumPy forward pass written here from the architecture description.

Weights use initializer_range 0.2, large enough that the two classic numerical traps (exact-erf gelu,
Keras's default LayerNorm epsilon 1e-3) move the output far beyond the 1e-4 tolerance; a test checks that.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_fixtures import config_json, encoder_tensors, google_groups, with_training_leftovers, write_tf1_checkpoint
from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import ALBERT_TINY, AlbertConfig, AlbertEncoder
from albert_ner.pretrained.checkpoint import load_albert_checkpoint

TOLERANCE = 1e-4
LENGTHS = (12, 7, 3)


def _batch(vocab_size: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and padding mask for a right-padded batch of sequences of LENGTHS tokens."""
    rng = np.random.default_rng(seed)
    length = max(LENGTHS)
    mask = np.arange(length)[None, :] < np.array(LENGTHS)[:, None]
    token_ids = np.where(mask, rng.integers(1, vocab_size, (len(LENGTHS), length)), 0).astype(np.int32)
    return token_ids, mask


def _loaded_encoder(tmp_path, family: str, **sizes) -> tuple[AlbertEncoder, dict, dict]:
    values = config_json(family, **sizes)
    tensors = encoder_tensors(family, values)
    prefix = write_tf1_checkpoint(tmp_path / f"{family}.ckpt", with_training_leftovers(tensors, values))
    encoder = AlbertEncoder(AlbertConfig.from_dict(values))
    load_albert_checkpoint(encoder, prefix)
    return encoder, tensors, values


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _numpy_brightmart(tensors, values, token_ids, mask, gelu=_gelu_tanh, epsilon=1e-12) -> np.ndarray:
    """brightmart albert_zh in float64: word embedding projected to H (no bias), + position + type-0
    embeddings, LayerNorm; then the one shared block ``num_hidden_layers`` times (post-LN, or pre-LN with
    no final LayerNorm when ln_type is "preln"); padding keys get -10000 added to their scores."""
    t = {name: value.astype(np.float64) for name, value in tensors.items()}
    heads, hidden = values["num_attention_heads"], values["hidden_size"]
    size = hidden // heads
    batch, length = token_ids.shape

    def layer_norm(x, scope):
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + epsilon) * t[f"{scope}/gamma"] + t[f"{scope}/beta"]

    def dense(x, scope):
        return x @ t[f"{scope}/kernel"] + t[f"{scope}/bias"]

    block = "bert/encoder/layer_shared/"

    def attention(x):
        q, k, v = (dense(x, f"{block}attention/self/{p}").reshape(batch, length, heads, size)
                   for p in ("query", "key", "value"))
        scores = np.einsum("bqnd,bknd->bnqk", q, k) / math.sqrt(size)
        scores = scores + (1.0 - mask[:, None, None, :]) * -10000.0
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = np.einsum("bnqk,bknd->bqnd", probabilities, v).reshape(batch, length, hidden)
        return dense(context, f"{block}attention/output/dense")

    def feed_forward(x):
        return dense(gelu(dense(x, f"{block}intermediate/dense")), f"{block}output/dense")

    x = t["bert/embeddings/word_embeddings"][token_ids] @ t["bert/embeddings/word_embeddings_2"]
    x = x + t["bert/embeddings/position_embeddings"][:length] + t["bert/embeddings/token_type_embeddings"][0]
    x = layer_norm(x, "bert/embeddings/LayerNorm")
    for _ in range(values["num_hidden_layers"]):
        if values.get("ln_type") == "preln":
            x = x + attention(layer_norm(x, f"{block}attention/output/LayerNorm"))
            x = x + feed_forward(layer_norm(x, f"{block}output/LayerNorm"))
        else:
            x = layer_norm(x + attention(x), f"{block}attention/output/LayerNorm")
            x = layer_norm(x + feed_forward(x), f"{block}output/LayerNorm")
    return x


def _max_difference(ours, reference, mask) -> float:
    return float(np.max(np.abs(np.asarray(ours, np.float64) - np.asarray(reference, np.float64))[mask]))


@pytest.mark.parametrize("ln_type", ["postln", "preln"])
def test_brightmart_matches_numpy_reference(tmp_path, ln_type):
    encoder, tensors, values = _loaded_encoder(tmp_path, "brightmart", num_hidden_layers=3, ln_type=ln_type)
    token_ids, mask = _batch(values["vocab_size"])
    ours = encoder(token_ids, mask).numpy()
    difference = _max_difference(ours, _numpy_brightmart(tensors, values, token_ids, mask), mask)
    print(f"\nbrightmart ({ln_type}) vs NumPy reference: max abs difference {difference:.2e}")
    assert difference <= TOLERANCE


def test_reference_comparison_would_catch_erf_gelu_and_keras_epsilon(tmp_path):
    encoder, tensors, values = _loaded_encoder(tmp_path, "brightmart", num_hidden_layers=3)
    token_ids, mask = _batch(values["vocab_size"])
    ours = encoder(token_ids, mask).numpy()
    erf = _max_difference(ours, _numpy_brightmart(tensors, values, token_ids, mask, gelu=_gelu_erf), mask)
    epsilon = _max_difference(ours, _numpy_brightmart(tensors, values, token_ids, mask, epsilon=1e-3), mask)
    print(f"\nwrong variants vs our encoder: erf gelu {erf:.2e}, LayerNorm epsilon 1e-3 {epsilon:.2e}")
    assert erf > 5 * TOLERANCE and epsilon > 5 * TOLERANCE


def _hugging_face_state(tensors: dict[str, np.ndarray], values: dict) -> dict:
    """TF1 Google-format names -> Hugging Face AlbertModel parameters (kernels transposed)."""
    import torch

    def tensor(name, transpose=False):
        value = tensors[name].T if transpose else tensors[name]
        return torch.tensor(np.ascontiguousarray(value))

    state = {
        "embeddings.word_embeddings.weight": tensor("bert/embeddings/word_embeddings"),
        "embeddings.position_embeddings.weight": tensor("bert/embeddings/position_embeddings"),
        "embeddings.token_type_embeddings.weight": tensor("bert/embeddings/token_type_embeddings"),
        "embeddings.LayerNorm.weight": tensor("bert/embeddings/LayerNorm/gamma"),
        "embeddings.LayerNorm.bias": tensor("bert/embeddings/LayerNorm/beta"),
        "encoder.embedding_hidden_mapping_in.weight": tensor("bert/encoder/embedding_hidden_mapping_in/kernel", True),
        "encoder.embedding_hidden_mapping_in.bias": tensor("bert/encoder/embedding_hidden_mapping_in/bias"),
    }
    parts = {
        "attention.query": "attention_1/self/query", "attention.key": "attention_1/self/key",
        "attention.value": "attention_1/self/value", "attention.dense": "attention_1/output/dense",
        "ffn": "ffn_1/intermediate/dense", "ffn_output": "ffn_1/intermediate/output/dense",
    }
    norms = {"attention.LayerNorm": "LayerNorm", "full_layer_layer_norm": "LayerNorm_1"}
    for group in google_groups(values):
        for inner in range(values["inner_group_num"]):
            ours = f"encoder.albert_layer_groups.{group}.albert_layers.{inner}."
            theirs = f"bert/encoder/transformer/group_{group}/inner_group_{inner}/"
            for hf_name, tf_name in parts.items():
                state[f"{ours}{hf_name}.weight"] = tensor(f"{theirs}{tf_name}/kernel", True)
                state[f"{ours}{hf_name}.bias"] = tensor(f"{theirs}{tf_name}/bias")
            for hf_name, tf_name in norms.items():
                state[f"{ours}{hf_name}.weight"] = tensor(f"{theirs}{tf_name}/gamma")
                state[f"{ours}{hf_name}.bias"] = tensor(f"{theirs}{tf_name}/beta")
    return state


@pytest.mark.parametrize("layers, groups, inner", [(3, 1, 1), (4, 2, 2)])
def test_google_matches_hugging_face(tmp_path, layers, groups, inner):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    encoder, tensors, values = _loaded_encoder(tmp_path, "google", num_hidden_layers=layers,
                                               num_hidden_groups=groups, inner_group_num=inner)
    hf_config = transformers.AlbertConfig(
        vocab_size=values["vocab_size"], embedding_size=values["embedding_size"], hidden_size=values["hidden_size"],
        num_hidden_layers=layers, num_hidden_groups=groups, inner_group_num=inner,
        num_attention_heads=values["num_attention_heads"], intermediate_size=values["intermediate_size"],
        hidden_act="gelu_new", layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        max_position_embeddings=values["max_position_embeddings"], type_vocab_size=values["type_vocab_size"])
    model = transformers.AlbertModel(hf_config, add_pooling_layer=False).eval()
    model.load_state_dict(_hugging_face_state(tensors, values), strict=True)
    token_ids, mask = _batch(values["vocab_size"])
    with torch.no_grad():
        reference = model(input_ids=torch.tensor(token_ids, dtype=torch.long),
                          attention_mask=torch.tensor(mask, dtype=torch.long)).last_hidden_state.numpy()
    difference = _max_difference(encoder(token_ids, mask).numpy(), reference, mask)
    print(f"\nGoogle ({layers} layers, {groups} groups x {inner} inner) vs Hugging Face AlbertModel: "
          f"max abs difference {difference:.2e}")
    assert difference <= TOLERANCE


def _tiny_config(family: str = "brightmart", **overrides) -> AlbertConfig:
    values = config_json(family, **overrides)
    return AlbertConfig.from_dict(values)


def test_padding_tokens_do_not_change_real_tokens():
    encoder = AlbertEncoder(_tiny_config())
    token_ids, mask = _batch(120)
    other_padding = np.where(mask, token_ids, 57).astype(np.int32)
    first, second = encoder(token_ids, mask).numpy(), encoder(other_padding, mask).numpy()
    np.testing.assert_allclose(first[mask], second[mask], atol=1e-6)
    # ...whereas the same ids seen as real tokens do change them.
    assert np.abs(encoder(other_padding, np.ones_like(mask)).numpy()[mask] - first[mask]).max() > 1e-3


def test_dropout_only_in_training():
    encoder = AlbertEncoder(_tiny_config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1))
    token_ids, mask = _batch(120)
    inference = encoder(token_ids, mask).numpy()
    np.testing.assert_array_equal(inference, encoder(token_ids, mask, training=False).numpy())
    assert np.abs(encoder(token_ids, mask, training=True).numpy() - inference).max() > 1e-3


def test_jit_compiled_function_equals_eager():
    encoder = AlbertEncoder(_tiny_config("google", num_hidden_layers=4, num_hidden_groups=2))
    token_ids, mask = _batch(120)
    eager = encoder(token_ids, mask).numpy()
    compiled = tf.function(lambda ids, padding: encoder(ids, padding), jit_compile=True)
    np.testing.assert_allclose(compiled(tf.constant(token_ids), tf.constant(mask)).numpy(), eager, atol=1e-5)


def test_mixed_float16_close_to_float32():
    config = _tiny_config()
    token_ids, mask = _batch(120)
    reference = AlbertEncoder(config)
    expected = reference(token_ids, mask).numpy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        encoder = AlbertEncoder(config)
        encoder.build()
        encoder.set_weights(reference.get_weights())
        output = encoder(token_ids, mask)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert output.dtype == tf.float16
    assert all(weight.dtype == "float32" for weight in encoder.weights)
    difference = _max_difference(output.numpy(), expected, mask)
    print(f"\nmixed_float16 vs float32: max abs difference {difference:.2e}")
    assert np.isfinite(output.numpy()).all() and difference < 0.05


def test_get_config_round_trip():
    config = _tiny_config("google", num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)
    encoder = AlbertEncoder(config, name="albert")
    token_ids, mask = _batch(120)
    expected = encoder(token_ids, mask).numpy()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(encoder))
    assert restored.config == config and restored.name == "albert"
    restored.set_weights(encoder.get_weights())
    np.testing.assert_array_equal(restored(token_ids, mask).numpy(), expected)
    assert AlbertConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_google_groups_follow_the_training_code():
    # albert_config_tiny_google_fast.json: 4 layers, 12 groups -> layers run groups 0, 3, 6, 9.
    config = _tiny_config("google", num_hidden_layers=4, num_hidden_groups=12)
    assert config.used_groups() == [0, 3, 6, 9]
    assert len(AlbertEncoder(config).groups) == 4
    # Float arithmetic in Google's code: with 22 layers in 22 groups layer 15 runs group 14.
    assert _tiny_config("google", num_hidden_layers=22, num_hidden_groups=22).group_of_layer(15) == 14


def test_google_without_embedding_mapping_when_sizes_are_equal():
    encoder = AlbertEncoder(_tiny_config("google", embedding_size=32, hidden_size=32))
    encoder.build()
    assert encoder.embedding_projection is None
    assert encoder(*_batch(120)).shape == (3, 12, 32)


def test_real_tiny_size_output_shape():
    token_ids, mask = _batch(ALBERT_TINY.vocab_size)
    assert AlbertEncoder(ALBERT_TINY)(token_ids, mask).shape == (3, 12, 312)


def test_sequence_longer_than_position_table_is_rejected():
    encoder = AlbertEncoder(_tiny_config(max_position_embeddings=8))
    with pytest.raises(ValueError, match="sequence length 12 exceeds max_position_embeddings 8"):
        encoder(*_batch(120))


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size 30 is not divisible by num_attention_heads 4"),
    ({"hidden_act": "swish"}, "hidden_act 'swish' is not one of"),
    ({"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer, got 0"),
    ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob must be a probability in [0, 1), got 1.5"),
    ({"ln_type": "sandwich"}, "ln_type 'sandwich' is not one of"),
    ({"vocab_size": "21128"}, "vocab_size must be a positive integer, got '21128'"),
])
def test_config_errors_repeat_the_values(overrides, message):
    with pytest.raises(CheckpointError) as error:
        _tiny_config(**overrides)
    assert message in str(error.value)


def test_brightmart_config_cannot_have_groups():
    with pytest.raises(CheckpointError, match="num_hidden_groups is 2 and inner_group_num is 1"):
        AlbertConfig(vocab_size=10, embedding_size=4, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=16, family="brightmart", num_hidden_groups=2)


def test_from_json_file_detects_family(tmp_path):
    for family in ("brightmart", "google"):
        path = tmp_path / f"{family}.json"
        path.write_text(json.dumps(config_json(family)), encoding="utf-8")
        assert AlbertConfig.from_json_file(path).family == family
    # brightmart configs before ln_type existed have neither key.
    legacy = {key: value for key, value in config_json("brightmart").items() if key != "ln_type"}
    assert AlbertConfig.from_dict(legacy).family == "brightmart"


def test_from_json_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "albert_config.json"
    broken.write_text('{"vocab_size": 21128,\n "hidden_size": }', encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"albert_config\.json:2:17: invalid JSON"):
        AlbertConfig.from_json_file(broken)
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({k: v for k, v in config_json("google").items() if k != "hidden_size"}))
    with pytest.raises(CheckpointError, match=r"incomplete\.json: invalid ALBERT config: missing hidden_size"):
        AlbertConfig.from_json_file(incomplete)
    variant = tmp_path / "variant.json"
    variant.write_text(json.dumps(config_json("google", net_structure_type=1)))
    with pytest.raises(CheckpointError, match=r"net_structure_type=1 \(only 0 is supported\)"):
        AlbertConfig.from_json_file(variant)
