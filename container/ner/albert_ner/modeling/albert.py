"""The ALBERT encoder, in the two layouts that pretrained Chinese ALBERT checkpoints come in.

brightmart ``albert_zh`` and Google-format ALBERT differ in architecture, not only in variable names:

* brightmart projects the word embedding to the hidden size right after the lookup (``word_embeddings_2``,
  no bias) and adds hidden-sized position and token-type embeddings before the embedding LayerNorm; all
  layers share one block (``layer_shared``). ``ln_type`` "preln" (albert_xxlarge) moves each LayerNorm in
  front of its sub-block.
* Google keeps the embeddings, their sum and their LayerNorm at the embedding size, then maps to the hidden
  size (``embedding_hidden_mapping_in``, with bias; absent when the two sizes are equal). Blocks come in
  ``num_hidden_groups`` groups of ``inner_group_num`` blocks; layer ``i`` runs every block of group
  ``int(i / num_hidden_layers * num_hidden_groups)``, the expression (float arithmetic included) that
  Google's code used when it trained the checkpoints.

Every kernel has the shape of its TF1 variable, so loading a checkpoint (``albert_ner.pretrained``) is a
plain assignment (PyTorch checkpoints, ``albert_ner.pretrained.transformers_albert``, are transposed on the
way in). The numerics follow the code that trained the weights: ``hidden_act`` "gelu" is TF1's tanh approximation
and LayerNorm epsilon is 1e-12 (not Keras's 1e-3): getting either wrong would still run, and only drift from
what the pretrained weights expect.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import keras
import tensorflow as tf

from albert_ner.errors import CheckpointError

FAMILIES = ("brightmart", "google")
LN_TYPES = ("postln", "preln")
LAYER_NORM_EPSILON = 1e-12
# Added to the attention scores of padding positions, as the TF1 code does. Representable in float16.
_MASKED_SCORE = -10000.0


def _gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


def _gelu_erf(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=False)


# "gelu" means the tanh approximation in the TF1 codebases; Hugging Face calls the same function "gelu_new",
# and its own "gelu" is the exact erf form, which is "gelu_erf" here (albert_ner.pretrained.transformers_albert
# maps Hugging Face names onto these).
_ACTIVATIONS = {"gelu": _gelu_tanh, "gelu_new": _gelu_tanh, "gelu_erf": _gelu_erf, "relu": tf.nn.relu,
                "tanh": tf.tanh}

# Google's config keys for architectures its released checkpoints never use; only their defaults are built.
_GOOGLE_UNSUPPORTED_DEFAULTS = {"net_structure_type": 0, "gap_size": 0, "num_memory_blocks": 0, "down_scale_factor": 1}


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlbertConfig:
    """The fields of ``albert_config.json`` that shape the encoder, plus the checkpoint family.

    Construct it from the JSON shipped with a checkpoint (:meth:`from_json_file`) so that the family and
    every size match the weights; invalid values raise :class:`CheckpointError` repeating what was given.
    """

    vocab_size: int
    embedding_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    family: str
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    ln_type: str = "postln"
    #: Google-format only: map embeddings to the hidden size? None: when the sizes differ, as Google's TF1
    #: code does; transformers' AlbertModel always maps (True).
    embedding_mapping: bool | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.embedding_mapping is not None and self.family != "google":
            problems.append(f"embedding_mapping {self.embedding_mapping!r} exists only in Google-format ALBERT")
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_hidden_groups",
                     "inner_group_num"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                problems.append(f"{name} must be a probability in [0, 1), got {value!r}")
        if (not isinstance(self.initializer_range, (int, float)) or isinstance(self.initializer_range, bool)
                or not self.initializer_range > 0):
            problems.append(f"initializer_range must be a positive number, got {self.initializer_range!r}")
        if self.hidden_act not in _ACTIVATIONS:
            problems.append(f"hidden_act {self.hidden_act!r} is not one of {sorted(_ACTIVATIONS)}")
        if self.family not in FAMILIES:
            problems.append(f"family {self.family!r} is not one of {list(FAMILIES)}")
        if self.ln_type not in LN_TYPES:
            problems.append(f"ln_type {self.ln_type!r} is not one of {list(LN_TYPES)}")
        if (isinstance(self.hidden_size, int) and isinstance(self.num_attention_heads, int)
                and self.num_attention_heads > 0 and self.hidden_size % self.num_attention_heads):
            problems.append(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                            f"{self.num_attention_heads}")
        if self.family == "brightmart" and (self.num_hidden_groups, self.inner_group_num) != (1, 1):
            problems.append(f"brightmart albert_zh shares one block across all layers, but num_hidden_groups "
                            f"is {self.num_hidden_groups} and inner_group_num is {self.inner_group_num} "
                            "(expected 1 and 1)")
        if self.family == "google" and self.ln_type != "postln":
            problems.append(f"ln_type {self.ln_type!r} exists only in brightmart albert_zh; Google-format ALBERT "
                            "is post-LN")
        if problems:
            raise CheckpointError("invalid ALBERT config: " + "; ".join(problems))

    @property
    def attention_head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_width(self) -> int:
        """Width of the position and token-type embeddings and of the embedding LayerNorm."""
        return self.hidden_size if self.family == "brightmart" else self.embedding_size

    @property
    def has_embedding_mapping(self) -> bool:
        """Whether a Google encoder maps embeddings to the hidden size (Google's code skips it when equal)."""
        if self.family != "google":
            return False
        return self.embedding_mapping if self.embedding_mapping is not None else self.embedding_size != self.hidden_size

    def group_of_layer(self, layer_index: int) -> int:
        return int(layer_index / self.num_hidden_layers * self.num_hidden_groups)

    def used_groups(self) -> list[int]:
        """The groups some layer runs; a checkpoint holds variables for these only."""
        return sorted({self.group_of_layer(index) for index in range(self.num_hidden_layers)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AlbertConfig:
        """Build from ``albert_config.json`` contents (or :meth:`to_dict` output).

        Without an explicit ``family`` it is read from the keys: ``ln_type``, or no ``num_hidden_groups``,
        means brightmart albert_zh; otherwise Google. Keys the encoder does not use (pooler_*,
        directionality, layer_norm_eps...) are ignored.
        """
        family = values.get("family")
        if family is None:
            family = "brightmart" if "ln_type" in values or "num_hidden_groups" not in values else "google"
        if family == "google":
            unsupported = [f"{key}={values[key]!r} (only {default!r} is supported)"
                           for key, default in _GOOGLE_UNSUPPORTED_DEFAULTS.items()
                           if key in values and values[key] != default]
            if unsupported:
                raise CheckpointError("invalid ALBERT config: unsupported Google ALBERT variant: "
                                      + ", ".join(unsupported))
        fields = {field.name: field for field in dataclasses.fields(cls)}
        required = [name for name, field in fields.items()
                    if field.default is dataclasses.MISSING and name != "family"]
        missing = [name for name in required if name not in values]
        if missing:
            raise CheckpointError(f"invalid ALBERT config: missing {', '.join(missing)}; "
                                  f"found keys {sorted(values)}")
        known = {name: values[name] for name in fields if name in values and name != "family"}
        if known.get("ln_type") is None:
            known.pop("ln_type", None)
        return cls(family=family, **known)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> AlbertConfig:
        values = read_config_json(path)
        try:
            return cls.from_dict(values)
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}") from error


def read_config_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's config file as a JSON object, every problem a CheckpointError naming the file; both
    the TF1 families' ``albert_config.json`` and transformers' ``config.json`` are read with it."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read ALBERT config: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from error
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path}: ALBERT config is not UTF-8: {error}") from error
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: ALBERT config must be a JSON object, found {type(values).__name__}")
    return values


#: brightmart albert_zh sizes: hidden, layers, attention heads, feed-forward (intermediate) size.
ENCODER_SIZES = {
    "tiny": (312, 4, 12, 1248),
    "small": (384, 6, 12, 1536),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}


def sized_config(size: str, vocab_size: int = 21128, num_hidden_layers: int | None = None) -> AlbertConfig:
    """The brightmart-layout config of an albert_zh size, for an encoder trained from scratch.

    ``vocab_size`` defaults to albert_zh's ``vocab.txt`` (21,128 tokens); ``num_hidden_layers`` overrides
    how many times the shared block is applied (the parameters stay those of the size).
    """
    if size not in ENCODER_SIZES:
        raise CheckpointError(f"encoder size {size!r} is not one of {list(ENCODER_SIZES)}")
    hidden, layers, heads, intermediate = ENCODER_SIZES[size]
    return AlbertConfig(vocab_size=vocab_size, embedding_size=128, hidden_size=hidden,
                        num_hidden_layers=num_hidden_layers or layers, num_attention_heads=heads,
                        intermediate_size=intermediate, family="brightmart")


#: brightmart albert_tiny_zh, the smallest pretrained Chinese ALBERT.
ALBERT_TINY = sized_config("tiny")


def activation(config: AlbertConfig) -> Any:
    """The config's ``hidden_act``, computed as the code that trained such weights computes it."""
    return _ACTIVATIONS[config.hidden_act]


def _initializer(config: AlbertConfig) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def _layer_norm(name: str, dtype: Any) -> keras.layers.LayerNormalization:
    # Keras computes the normalisation in float32 even under mixed precision, so 1e-12 is not lost to float16.
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)


class AlbertBlock(keras.layers.Layer):
    """One attention + feed-forward block; the encoder runs it once per layer that uses it.

    Sublayer names follow brightmart's scopes (Google's ``LayerNorm`` is ``attention_layer_norm`` here,
    ``LayerNorm_1`` is ``output_layer_norm``).
    """

    def __init__(self, config: AlbertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        dtype = self.dtype_policy

        def dense(units: int, name: str) -> keras.layers.Dense:
            return keras.layers.Dense(units, kernel_initializer=_initializer(config), name=name, dtype=dtype)

        self.query = dense(config.hidden_size, "query")
        self.key = dense(config.hidden_size, "key")
        self.value = dense(config.hidden_size, "value")
        self.attention_output = dense(config.hidden_size, "attention_output")
        self.attention_layer_norm = _layer_norm("attention_layer_norm", dtype)
        self.intermediate = dense(config.intermediate_size, "intermediate")
        self.output_dense = dense(config.hidden_size, "output_dense")
        self.output_layer_norm = _layer_norm("output_layer_norm", dtype)
        self.attention_dropout = keras.layers.Dropout(config.attention_probs_dropout_prob, dtype=dtype)
        self.hidden_dropout = keras.layers.Dropout(config.hidden_dropout_prob, dtype=dtype)
        self.activation = _ACTIVATIONS[config.hidden_act]

    def build(self, input_shape: Any = None) -> None:
        hidden = (None, None, self.config.hidden_size)
        for layer in (self.query, self.key, self.value, self.attention_output, self.attention_layer_norm,
                      self.intermediate, self.output_layer_norm):
            layer.build(hidden)
        self.output_dense.build((None, None, self.config.intermediate_size))

    def call(self, hidden_states: tf.Tensor, attention_bias: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``attention_bias`` [B,1,1,T]: 0 for tokens, -10000 for padding."""
        pre_ln = self.config.ln_type == "preln"
        attention_input = self.attention_layer_norm(hidden_states) if pre_ln else hidden_states
        attention = self.hidden_dropout(self._attention(attention_input, attention_bias, training), training=training)
        attention = hidden_states + attention
        if not pre_ln:
            attention = self.attention_layer_norm(attention)
        ffn_input = self.output_layer_norm(attention) if pre_ln else attention
        ffn = self.output_dense(self.activation(self.intermediate(ffn_input)))
        output = attention + self.hidden_dropout(ffn, training=training)
        return output if pre_ln else self.output_layer_norm(output)

    def _attention(self, hidden_states: tf.Tensor, attention_bias: tf.Tensor, training: bool) -> tf.Tensor:
        config = self.config
        batch, length = tf.shape(hidden_states)[0], tf.shape(hidden_states)[1]
        heads_shape = [batch, length, config.num_attention_heads, config.attention_head_size]
        query = tf.reshape(self.query(hidden_states), heads_shape)
        key = tf.reshape(self.key(hidden_states), heads_shape)
        value = tf.reshape(self.value(hidden_states), heads_shape)
        scores = tf.einsum("bqnd,bknd->bnqk", query, key)
        # Softmax in float32: float16 scores plus the -10000 mask can overflow and lose precision. (Keras casts
        # the bias, an input of this layer, to the compute dtype; 0 and -10000 survive that exactly.)
        scores = (tf.cast(scores, tf.float32) * (1.0 / math.sqrt(config.attention_head_size))
                  + tf.cast(attention_bias, tf.float32))
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)
        probabilities = self.attention_dropout(probabilities, training=training)
        context = tf.einsum("bnqk,bknd->bqnd", probabilities, value)
        return self.attention_output(tf.reshape(context, [batch, length, config.hidden_size]))


@keras.saving.register_keras_serializable(package="albert_ner")
class AlbertEncoder(keras.layers.Layer):
    """ALBERT as a Keras layer: token ids and a padding mask in, one hidden vector per token out.

    Token-type ids are all 0 (a tagger feeds one segment). Build it from the config shipped with the
    checkpoint, then call :func:`albert_ner.pretrained.checkpoint.load_pretrained`.
    """

    def __init__(self, config: AlbertConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        dtype = self.dtype_policy
        self.word_embeddings = keras.layers.Embedding(
            config.vocab_size, config.embedding_size, embeddings_initializer=_initializer(config),
            name="word_embeddings", dtype=dtype)
        # brightmart: word_embeddings_2, right after the lookup. Google: embedding_hidden_mapping_in, after LN.
        self.embedding_projection: keras.layers.Dense | None = None
        if config.family == "brightmart" or config.has_embedding_mapping:
            self.embedding_projection = keras.layers.Dense(
                config.hidden_size, use_bias=config.family == "google", kernel_initializer=_initializer(config),
                name="embedding_projection", dtype=dtype)
        self.embedding_layer_norm = _layer_norm("embedding_layer_norm", dtype)
        self.embedding_dropout = keras.layers.Dropout(config.hidden_dropout_prob, dtype=dtype)
        used = config.used_groups()
        self.groups = [[AlbertBlock(config, name=f"group_{group}_inner_{inner}", dtype=dtype)
                        for inner in range(config.inner_group_num)]
                       for group in used]
        self._group_of_layer = [used.index(config.group_of_layer(index))
                                for index in range(config.num_hidden_layers)]

    def build(self, token_ids_shape: Any = None) -> None:
        config = self.config
        width = config.embedding_width
        self.word_embeddings.build()
        self.position_embeddings = self.add_weight(
            shape=(config.max_position_embeddings, width), initializer=_initializer(config),
            name="position_embeddings")
        self.token_type_embeddings = self.add_weight(
            shape=(config.type_vocab_size, width), initializer=_initializer(config), name="token_type_embeddings")
        self.embedding_layer_norm.build((None, None, width))
        if self.embedding_projection is not None:
            self.embedding_projection.build((None, None, config.embedding_size))
        for group in self.groups:
            for block in group:
                block.build()

    def call(self, token_ids: tf.Tensor, padding_mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        """token_ids [B,T] int, padding_mask [B,T] bool (True for tokens) -> sequence output [B,T,H]."""
        config = self.config
        length = token_ids.shape[1]
        if length is not None and length > config.max_position_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                             f"{config.max_position_embeddings}")
        embeddings = self.word_embeddings(token_ids)
        if config.family == "brightmart":
            assert self.embedding_projection is not None  # built for both families that project
            embeddings = self.embedding_projection(embeddings)
        positions = self.position_embeddings[: tf.shape(token_ids)[1]]
        embeddings = embeddings + tf.cast(positions + self.token_type_embeddings[0], self.compute_dtype)
        hidden_states = self.embedding_dropout(self.embedding_layer_norm(embeddings), training=training)
        if config.has_embedding_mapping:
            assert self.embedding_projection is not None
            hidden_states = self.embedding_projection(hidden_states)

        attention_bias = (1.0 - tf.cast(padding_mask, tf.float32)) * _MASKED_SCORE
        attention_bias = attention_bias[:, tf.newaxis, tf.newaxis, :]
        for layer_index in range(config.num_hidden_layers):
            for block in self.groups[self._group_of_layer[layer_index]]:
                hidden_states = block(hidden_states, attention_bias, training=training)
        return hidden_states

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AlbertEncoder:
        config = dict(config)
        return cls(AlbertConfig.from_dict(config.pop("config")), **config)
