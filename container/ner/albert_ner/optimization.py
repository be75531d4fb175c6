"""How the weights move: the learning-rate schedule, the two AdamW optimizers, weight averaging, precision
and loss scaling, and the training step that ties them together.

The encoder and the head have their own optimizer because they want learning rates an order of magnitude
apart when the encoder is pretrained (5e-5 against 1e-3); both follow the same warm-up and linear decay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from albert_ner.cluster import distribute_batch
from albert_ner.modeling.tagger import AlbertTagger

if TYPE_CHECKING:
    from albert_ner.hyperparameters import Hyperparameters


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then linear decay to 0 at ``total_steps``."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, max(total_steps, 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay = self.peak * tf.maximum(0.0, (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1))
        return tf.where(step < self.warmup_steps, warmup, decay)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


@dataclass(frozen=True)
class OptimizerSettings:
    """What the two optimizers are built from (the hyperparameters of the same names)."""

    encoder_learning_rate: float
    head_learning_rate: float
    warmup_proportion: float
    weight_decay: float
    ema_momentum: float | None

    @classmethod
    def of(cls, hp: Hyperparameters, pretrained: bool) -> OptimizerSettings:
        """The job's settings; the encoder's peak learning rate depends on whether it is pretrained."""
        return cls(hp.encoder_learning_rate(pretrained), hp.head_learning_rate, hp.warmup_proportion,
                   hp.weight_decay, hp.ema_momentum)


def _adamw(peak: float, settings: OptimizerSettings, total_steps: int) -> keras.optimizers.AdamW:
    averaging = {} if settings.ema_momentum is None else {"use_ema": True, "ema_momentum": settings.ema_momentum}
    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(peak, int(total_steps * settings.warmup_proportion), total_steps),
        weight_decay=settings.weight_decay, epsilon=1e-6, **averaging)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "LayerNorm", "layer_norm",
                                                   "transitions"])
    return optimizer


def make_optimizers(model: AlbertTagger, settings: OptimizerSettings,
                    total_steps: int) -> tuple[keras.optimizers.AdamW, keras.optimizers.AdamW]:
    """The encoder's and the head's AdamW, built on their variables (call inside the strategy's scope)."""
    encoder_optimizer = _adamw(settings.encoder_learning_rate, settings, total_steps)
    head_optimizer = _adamw(settings.head_learning_rate, settings, total_steps)
    encoder_optimizer.build(model.encoder.trainable_variables)
    head_optimizer.build(model.head_variables)
    return encoder_optimizer, head_optimizer


@contextlib.contextmanager
def averaged_weights(model: AlbertTagger, encoder_optimizer: keras.optimizers.Optimizer,
                     head_optimizer: keras.optimizers.Optimizer) -> Iterator[None]:
    """Inside the block the model holds the optimizers' moving averages of its weights, when they keep them
    (``ema_momentum``); after it, the weights as trained again.

    Evaluation, the best-weights copy and so the final model see the averages; the optimizer steps never do.
    """
    if not (encoder_optimizer.use_ema or head_optimizer.use_ema):
        yield
        return
    trained = model.get_weights()
    encoder_optimizer.finalize_variable_values(model.encoder.trainable_variables)
    head_optimizer.finalize_variable_values(model.head_variables)
    try:
        yield
    finally:
        model.set_weights(trained)


def make_loss_scale(precision: str) -> tf.Variable:
    """The loss scale: dynamic from 2**15 under float16, a constant 1 otherwise (inside the strategy's scope)."""
    return tf.Variable(2.0 ** 15 if precision == "float16" else 1.0, trainable=False, dtype=tf.float32,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


class TrainStep:
    """One optimizer step on a global batch of numpy arrays ``(token_ids, tag_ids, lengths, lexicon, weights)``
    (``lexicon`` is zero-wide when the model has none; ``weights``, each example's weight in the loss, are
    all 1 when not given). The loss is the weighted sum over the batch divided by the batch size.

    The batch is split across the replicas, the gradients summed over them, unscaled, clipped to the global
    norm and zeroed when not finite, then the encoder and the head update with their own optimizers.
    A call returns the loss as a scalar tensor without waiting for it: on an accelerator the host can
    build the next batch while the device computes this one, and the loop turns losses into Python
    numbers only when it logs. ``jit_compile=True`` (XLA), for benchmarks, compiles once per batch shape.
    """

    def __init__(self, model: AlbertTagger, optimizers: tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer],
                 loss_scale: tf.Variable, strategy: tf.distribute.Strategy, clip_norm: float, precision: str,
                 jit_compile: bool | None = None):
        self.model = model
        self.encoder_optimizer, self.head_optimizer = optimizers
        self.loss_scale = loss_scale
        self.strategy = strategy
        self.clip_norm = clip_norm
        self.precision = precision
        self._compiled = tf.function(self._global_step, reduce_retracing=True, jit_compile=jit_compile)

    def __call__(self, token_ids: np.ndarray, tag_ids: np.ndarray, lengths: np.ndarray,
                 lexicon: np.ndarray, weights: np.ndarray | None = None) -> tf.Tensor:
        weights = np.ones(len(token_ids), np.float32) if weights is None else weights.astype(np.float32)
        distributed = distribute_batch(self.strategy, token_ids, tag_ids, lengths, lexicon, weights)
        return self._compiled(*distributed, tf.constant(len(token_ids), tf.float32))

    @property
    def traces(self) -> int:
        """How many times the step was traced: once per batch shape it could not reuse a graph for."""
        return int(self._compiled.experimental_get_tracing_count())

    def _global_step(self, token_ids, tag_ids, lengths, lexicon, weights, global_batch):
        losses = self.strategy.run(self._replica_step,
                                   args=(token_ids, tag_ids, lengths, lexicon, weights, global_batch))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def _replica_step(self, token_ids, tag_ids, lengths, lexicon, weights, global_batch):
        model, loss_scale = self.model, self.loss_scale
        encoder_variables, head_variables = model.encoder.trainable_variables, model.head_variables
        with tf.GradientTape() as tape:
            scores = model(token_ids, lengths, lexicon, training=True)
            per_example = model.per_example_loss(scores, tag_ids, lengths)
            loss = tf.reduce_sum(tf.cast(weights, per_example.dtype) * per_example) / global_batch
            scaled_loss = loss * loss_scale
        gradients = tape.gradient(scaled_loss, encoder_variables + head_variables)
        gradients = [tf.convert_to_tensor(gradient) for gradient in gradients]
        # Sum over replicas here so that clipping sees the true global norm; the optimizers sum again,
        # hence the division by the replica count.
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        gradients = [gradient / loss_scale for gradient in gradients]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
        gradients, _ = tf.clip_by_global_norm(gradients, self.clip_norm)
        replicas = float(context.num_replicas_in_sync)
        gradients = [tf.where(finite, gradient / replicas, tf.zeros_like(gradient)) for gradient in gradients]
        if self.precision == "float16":
            _update_loss_scale(loss_scale, finite)
        self.encoder_optimizer.apply_gradients(
            zip(gradients[:len(encoder_variables)], encoder_variables, strict=True))
        self.head_optimizer.apply_gradients(zip(gradients[len(encoder_variables):], head_variables, strict=True))
        return loss


def _update_loss_scale(loss_scale: tf.Variable, finite: tf.Tensor) -> None:
    """Halve the float16 loss scale on overflow, double it slowly otherwise (the usual dynamic rule)."""
    loss_scale.assign(tf.where(finite, tf.minimum(loss_scale * 1.0005, 2.0 ** 24),
                               tf.maximum(loss_scale / 2.0, 1.0)))


def set_precision(precision: str) -> str:
    """Set Keras' global dtype policy from ``mixed_precision`` (``auto``: float16 on GPUs) and return its name."""
    if precision == "auto":
        precision = "float16" if tf.config.list_physical_devices("GPU") else "float32"
    keras.mixed_precision.set_global_policy(
        {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[precision])
    return precision
