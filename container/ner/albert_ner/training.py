"""The training job: data, model, optimizer, loop, evaluation, artifacts, top to bottom.

A custom loop under a ``tf.distribute`` strategy rather than ``model.fit``: Keras 3 ``fit`` fails under
MultiWorkerMirroredStrategy, and owning the loop gives exact control of batching (length grouping),
of the two learning rates (encoder and head), and of where the data position is when a job stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from albert_ner import resources
from albert_ner.checkpoints import find_pretrained, load_albert_checkpoint
from albert_ner.cluster import choose_strategy, strategy_name
from albert_ner.data import ReadReport, Sentence, read_channel, split_into_windows
from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import DataError, HyperparameterError, TrainingStopped
from albert_ner.export import export_saved_model
from albert_ner.evaluation import EvaluationReport, evaluate_entities, write_report
from albert_ner.files import write_text_atomically
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.prediction import Predictor, build_model, pad_batch
from albert_ner.tag_schemes import Entity, LabelMap, entities_to_tags
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training_state import Progress, TrainingState

log = logging.getLogger("albert_ner.training")

# brightmart albert_zh sizes (hidden, layers, heads, intermediate), used when training from scratch.
ENCODER_PRESETS = {
    "tiny": (312, 4, 12, 1248),
    "small": (384, 6, 12, 1536),
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}


# ---------------------------------------------------------------------------------------------- data
@dataclass
class PreparedData:
    """Everything read from the channels, with the vocabulary and label map derived from it."""

    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence] | None
    tokenizer: CharTokenizer
    label_map: LabelMap
    albert_config: AlbertConfig
    checkpoint_prefix: str | None


def prepare_data(hp: Hyperparameters, env: TrainingEnvironment) -> PreparedData:
    """Read the channels, split off validation data, and settle the vocabulary and label map."""
    channels = env.channel_input_dirs
    if "training" not in channels:
        raise DataError(f"no `training` channel: put labelled files under "
                        f"{env.base_dir / 'input' / 'data' / 'training'} (found channels: "
                        f"{sorted(channels) or 'none'})")
    train, report = _read(channels["training"], hp, "training")
    if "validation" in channels:
        validation, _ = _read(channels["validation"], hp, "validation")
    else:
        train, validation = _split(train, hp.validation_split, hp.seed)
        log.info("validation: %d sentences held out of training (validation_split=%s, seed=%d)",
                 len(validation), hp.validation_split, hp.seed)
    test = _read(channels["test"], hp, "test")[0] if "test" in channels else None

    pretrained_dir = (channels.get("pretrained") or (Path(hp.pretrained_dir) if hp.pretrained_dir else None)
                      or env.baked_pretrained_dir)
    if pretrained_dir is not None:
        files = find_pretrained(pretrained_dir)
        albert_config = AlbertConfig.from_json_file(files.config_path)
        vocab = Vocab.from_file(files.vocab_path)
        checkpoint_prefix: str | None = str(files.checkpoint_prefix)
        log.info("pretrained ALBERT: %s (%s family, hidden %d, %d layers)", pretrained_dir,
                 albert_config.family, albert_config.hidden_size, albert_config.num_hidden_layers)
    else:
        vocab = Vocab.build([sentence.tokens for sentence in train], min_count=hp.vocab_min_count)
        albert_config = scratch_config(hp, len(vocab))
        checkpoint_prefix = None
        log.info("no pretrained weights: ALBERT-%s-sized encoder from scratch, vocabulary of %d built from "
                 "the training data", hp.encoder_size, len(vocab))
    if hp.max_seq_length > albert_config.max_position_embeddings:
        raise HyperparameterError(f"hyperparameter max_seq_length={hp.max_seq_length}: the encoder has only "
                                  f"{albert_config.max_position_embeddings} positions")
    label_map = LabelMap(_entity_types(hp, train + validation), scheme=hp.tag_scheme)
    data = PreparedData(train, validation, test, CharTokenizer(vocab, lower_case=hp.lower_case),
                        label_map, albert_config, checkpoint_prefix)
    _log_data_summary(data, report, hp)
    return data


def _read(directory: Path, hp: Hyperparameters, channel: str) -> tuple[list[Sentence], ReadReport]:
    sentences, report = read_channel(directory, scheme=hp.input_tag_scheme, repair=hp.repair_tags)
    log.info("channel %s: %d sentences from %d file(s), tag scheme %s%s", channel, len(sentences),
             len(report.files), report.scheme,
             f", {report.repairs} entities repaired" if report.repairs else "")
    return sentences, report


def _split(sentences: list[Sentence], share: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    order = np.random.default_rng(seed).permutation(len(sentences))
    held_out = max(1, int(round(len(sentences) * share)))
    if held_out >= len(sentences):
        raise DataError(f"only {len(sentences)} training sentence(s): too few to hold out a validation "
                        f"split; add a `validation` channel")
    keep, hold = sorted(order[held_out:]), sorted(order[:held_out])
    return [sentences[i] for i in keep], [sentences[i] for i in hold]


def _entity_types(hp: Hyperparameters, sentences: Sequence[Sentence]) -> list[str]:
    found = sorted({entity.type for sentence in sentences for entity in sentence.entities})
    if hp.entity_types is None:
        if not found:
            raise DataError("the training data holds no entities: nothing to learn")
        return found
    unknown = sorted(set(found) - set(hp.entity_types))
    if unknown:
        raise HyperparameterError(f"hyperparameter entity_types={hp.entity_types!r}: the data also has "
                                  f"{unknown}")
    return sorted(set(hp.entity_types))


def scratch_config(hp: Hyperparameters, vocab_size: int) -> AlbertConfig:
    """The ``encoder_size`` preset as a brightmart-layout config for an encoder trained from scratch."""
    hidden, layers, heads, intermediate = ENCODER_PRESETS[hp.encoder_size]
    return AlbertConfig(vocab_size=vocab_size, embedding_size=128, hidden_size=hidden,
                        num_hidden_layers=hp.num_hidden_layers or layers, num_attention_heads=heads,
                        intermediate_size=intermediate, hidden_act="gelu", max_position_embeddings=512,
                        type_vocab_size=2, initializer_range=0.02, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, family="brightmart")


def _log_data_summary(data: PreparedData, report: ReadReport, hp: Hyperparameters) -> None:
    for name, sentences in (("training", data.train), ("validation", data.validation),
                            ("test", data.test or [])):
        if not sentences:
            continue
        counts: dict[str, int] = {}
        for sentence in sentences:
            for entity in sentence.entities:
                counts[entity.type] = counts.get(entity.type, 0) + 1
        characters = sum(len(sentence.tokens) for sentence in sentences)
        windowed = sum(len(sentence.tokens) > hp.max_seq_length - 2 for sentence in sentences)
        _, unknown = data.tokenizer.encode_corpus([sentence.tokens for sentence in sentences])
        log.info("data %s: %d sentences, %d characters, entities %s, [UNK] rate %.4f%s, %d sentence(s) "
                 "longer than %d characters split into windows", name, len(sentences), characters,
                 json.dumps(counts, ensure_ascii=False), unknown.rate,
                 f" (most common: {''.join(char for char, _ in unknown.most_common[:10])})"
                 if unknown.count else "", windowed, hp.max_seq_length - 2)
    log.info("labels (%s): %s", data.label_map.scheme, " ".join(data.label_map.tags))


class EncodedExamples:
    """Training windows as token and tag ids, stored once in two flat arrays (no per-sentence objects)."""

    def __init__(self, windows: Sequence[Sentence], tokenizer: CharTokenizer, label_map: LabelMap):
        self.lengths = np.array([len(window.tokens) for window in windows], dtype=np.int32)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        self.token_ids = np.empty(int(self.offsets[-1]), dtype=np.int32)
        self.tag_ids = np.empty(int(self.offsets[-1]), dtype=np.int32)
        tag_index = {tag: index for index, tag in enumerate(label_map.tags)}
        for number, window in enumerate(windows):
            start, end = self.offsets[number], self.offsets[number + 1]
            self.token_ids[start:end] = tokenizer.encode(window.tokens)
            tags = entities_to_tags(len(window.tokens), window.entities, label_map.scheme)
            self.tag_ids[start:end] = [tag_index[tag] for tag in tags]
        self.pad_id = tokenizer.vocab.pad_id

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(token_ids, tag_ids, lengths)`` of the given examples, right-padded to the longest."""
        slices = [slice(self.offsets[i], self.offsets[i + 1]) for i in indices]
        token_ids, lengths = pad_batch((self.token_ids[s] for s in slices), self.pad_id)
        tag_ids, _ = pad_batch((self.tag_ids[s] for s in slices), 0)
        return token_ids, tag_ids, lengths


def drop_tokens(token_ids: np.ndarray, lengths: np.ndarray, rate: float, unk_id: int,
                rng: np.random.Generator) -> np.ndarray:
    """A copy of ``token_ids`` with a share ``rate`` of the real (unpadded) tokens replaced by ``unk_id``.

    Word dropout (Lample et al., 2016) for characters: a model trained from scratch otherwise learns the
    training set's names by heart and misses the new ones of the test set.
    """
    real = np.arange(token_ids.shape[1]) < lengths[:, None]
    return np.where(real & (rng.random(token_ids.shape) < rate), unk_id, token_ids).astype(token_ids.dtype)


def batch_plan(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
               group_by_length: bool) -> list[np.ndarray]:
    """The batches of one epoch, as example indices; the same (seed, epoch) always gives the same plan.

    Length grouping sorts shuffled chunks of 50 batches by length, so each batch holds sentences of
    similar length (little padding) while batch order and membership stay random.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group_by_length:
        chunk = batch_size * 50
        order = np.concatenate([
            part[np.argsort(lengths[part], kind="stable")]
            for part in np.array_split(order, max(1, math.ceil(len(order) / chunk)))])
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------------------------------- optimizer
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


def _adamw(peak: float, hp: Hyperparameters, total_steps: int) -> keras.optimizers.AdamW:
    averaging = {} if hp.ema_momentum is None else {"use_ema": True, "ema_momentum": hp.ema_momentum}
    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(peak, int(total_steps * hp.warmup_proportion), total_steps),
        weight_decay=hp.weight_decay, epsilon=1e-6, **averaging)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "LayerNorm", "layer_norm",
                                                   "transitions"])
    return optimizer


def make_optimizers(model: AlbertTagger, hp: Hyperparameters, total_steps: int,
                    pretrained: bool) -> tuple[keras.optimizers.AdamW, keras.optimizers.AdamW]:
    """The encoder's and the head's AdamW, built on their variables (call inside the strategy's scope)."""
    encoder_optimizer = _adamw(hp.encoder_learning_rate(pretrained), hp, total_steps)
    head_optimizer = _adamw(hp.head_learning_rate, hp, total_steps)
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


def make_train_step(model: AlbertTagger, optimizers: tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer],
                    loss_scale: tf.Variable, strategy: tf.distribute.Strategy, clip_norm: float, precision: str,
                    jit_compile: bool | None = None) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """One optimizer step on a global batch of numpy arrays ``(token_ids, tag_ids, lengths)``; returns the loss.

    The batch is split across the replicas, the gradients summed over them, unscaled, clipped to the global
    norm and zeroed when not finite, then the encoder and the head update with their own optimizers. The
    loss comes back as a Python float, so each call waits for its step to finish. ``jit_compile=True`` (XLA),
    for benchmarks, compiles once per distinct batch shape.
    """
    encoder_optimizer, head_optimizer = optimizers
    encoder_variables, head_variables = model.encoder.trainable_variables, model.head_variables

    def replica_step(token_ids, tag_ids, lengths, global_batch):
        with tf.GradientTape() as tape:
            scores = model(token_ids, lengths, training=True)
            loss = tf.reduce_sum(model.per_example_loss(scores, tag_ids, lengths)) / global_batch
            scaled_loss = loss * loss_scale
        gradients = tape.gradient(scaled_loss, encoder_variables + head_variables)
        gradients = [tf.convert_to_tensor(gradient) for gradient in gradients]
        # Sum over replicas here so that clipping sees the true global norm; the optimizers sum again,
        # hence the division by the replica count.
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        gradients = [gradient / loss_scale for gradient in gradients]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        replicas = float(context.num_replicas_in_sync)
        gradients = [tf.where(finite, gradient / replicas, tf.zeros_like(gradient)) for gradient in gradients]
        if precision == "float16":
            _update_loss_scale(loss_scale, finite)
        encoder_optimizer.apply_gradients(zip(gradients[:len(encoder_variables)], encoder_variables))
        head_optimizer.apply_gradients(zip(gradients[len(encoder_variables):], head_variables))
        return loss

    @tf.function(reduce_retracing=True, jit_compile=jit_compile)
    def compiled_step(token_ids, tag_ids, lengths, global_batch):
        losses = strategy.run(replica_step, args=(token_ids, tag_ids, lengths, global_batch))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def train_step(token_ids: np.ndarray, tag_ids: np.ndarray, lengths: np.ndarray) -> float:
        distributed = _distribute(strategy, token_ids, tag_ids, lengths)
        return float(compiled_step(*distributed, tf.constant(len(token_ids), tf.float32)))

    return train_step


# ------------------------------------------------------------------------------------------- loop
@dataclass
class TrainingResult:
    validation: EvaluationReport
    test: EvaluationReport | None
    steps: int
    seconds: float


def train(hp: Hyperparameters, env: TrainingEnvironment) -> TrainingResult:
    """Run one training job end to end (resuming from its checkpoints) and write its model and reports."""
    started = time.monotonic()
    stop_signal = StopSignal()
    keras.utils.set_random_seed(hp.seed)
    precision = set_precision(hp)
    strategy = choose_strategy(env)
    log.info("TensorFlow %s, Keras %s; devices: %s; strategy %s with %d replica(s); precision %s",
             tf.__version__, keras.__version__, resources.describe_devices(), strategy_name(strategy),
             strategy.num_replicas_in_sync, precision)
    log.info("hyperparameters: %s", json.dumps(hp.to_dict(), ensure_ascii=False, sort_keys=True))

    data = prepare_data(hp, env)
    windows = [window.sentence for sentence in data.train
               for window in split_into_windows(sentence, hp.max_seq_length - 2)]
    examples = EncodedExamples(windows, data.tokenizer, data.label_map)
    del windows
    steps_per_epoch = math.ceil(len(examples) / hp.batch_size)
    total_steps = min(hp.max_steps or steps_per_epoch * hp.epochs, steps_per_epoch * hp.epochs)
    log.info("training on %d windows: %d steps per epoch, %d steps in all", len(examples), steps_per_epoch,
             total_steps)

    with strategy.scope():
        vocab = data.tokenizer.vocab
        model = AlbertTagger(data.albert_config, len(data.label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                             pad_id=vocab.pad_id, lstm_units=hp.lstm_units, dropout=hp.dropout,
                             use_crf=hp.use_crf, allowed=data.label_map.allowed_transitions())
        build_model(model, vocab.pad_id)
        pretrained = data.checkpoint_prefix is not None
        if pretrained:
            load_albert_checkpoint(model.encoder, data.checkpoint_prefix)
        encoder_optimizer, head_optimizer = make_optimizers(model, hp, total_steps, pretrained)
        loss_scale = make_loss_scale(precision)
        state = TrainingState(env.checkpoint_dir, model, [encoder_optimizer, head_optimizer], loss_scale,
                              keep=hp.keep_checkpoints, writer=env.is_chief)
    log.info("peak learning rates: encoder %g, head %g", hp.encoder_learning_rate(pretrained),
             hp.head_learning_rate)
    log.info("model: %s parameters (encoder %s, head %s)", f"{model.count_params():,}",
             f"{sum(int(np.prod(v.shape)) for v in model.encoder.trainable_variables):,}",
             f"{sum(int(np.prod(v.shape)) for v in model.head_variables):,}")
    train_step = make_train_step(model, (encoder_optimizer, head_optimizer), loss_scale, strategy, hp.clip_norm,
                                 precision)

    predictor = Predictor(model, data.tokenizer, data.label_map, hp.max_seq_length, hp.eval_batch_size)
    tensorboard = tf.summary.create_file_writer(str(env.output_dir / "tensorboard"))
    progress = state.restore() or Progress()
    best_weights = state.load_best_weights() if progress.step else None
    meter = resources.ThroughputMeter()
    bar = _progress_bar(total_steps, progress.step)
    running_loss, running_count, stop = 0.0, 0, progress.step >= total_steps
    while not stop and progress.epoch <= hp.epochs:
        plan = batch_plan(examples.lengths, hp.batch_size, hp.seed, progress.epoch, hp.length_grouping)
        while progress.next_batch < len(plan) and not stop:
            indices = plan[progress.next_batch]
            token_ids, tag_ids, lengths = examples.batch(indices)
            if hp.token_dropout:
                # Seeded by position, like the batch plan, so a resumed run drops the same tokens.
                rng = np.random.default_rng([hp.seed, progress.epoch, progress.next_batch])
                token_ids = drop_tokens(token_ids, lengths, hp.token_dropout, vocab.unk_id, rng)
            loss = train_step(token_ids, tag_ids, lengths)
            progress.step += 1
            progress.next_batch += 1
            running_loss, running_count = running_loss + loss, running_count + 1
            meter.add(len(indices), int(lengths.sum()))
            if bar is not None:
                bar.update(1)
            if progress.step % hp.log_every_steps == 0 or progress.step == total_steps:
                log.info("epoch=%d step=%d/%d train_loss=%.4f lr=%.3g %s", progress.epoch, progress.step,
                         total_steps, running_loss / running_count, float(encoder_optimizer.learning_rate),
                         meter.report())
                with tensorboard.as_default(step=progress.step):
                    tf.summary.scalar("train_loss", running_loss / running_count)
                running_loss, running_count = 0.0, 0
            end_of_epoch = progress.next_batch == len(plan)
            stop = progress.step >= total_steps
            if end_of_epoch or stop or (hp.eval_every_steps and progress.step % hp.eval_every_steps == 0):
                with averaged_weights(model, encoder_optimizer, head_optimizer):
                    report = evaluate(predictor, data.validation)
                    improved = report.f1 > progress.best_f1
                    if improved:
                        best_weights = model.get_weights()
                log.info("epoch=%d step=%d train_loss=%.4f val_precision=%.4f val_recall=%.4f val_f1=%.4f",
                         progress.epoch, progress.step, loss, report.micro.precision, report.micro.recall,
                         report.f1)
                with tensorboard.as_default(step=progress.step):
                    tf.summary.scalar("val_f1", report.f1)
                if improved:
                    progress.best_f1, progress.evaluations_since_best = report.f1, 0
                    state.save_best_weights(best_weights)
                else:
                    progress.evaluations_since_best += 1
                    if hp.early_stopping_patience and progress.evaluations_since_best >= hp.early_stopping_patience:
                        log.info("early stopping: no better validation F1 in %d evaluations (best %.4f)",
                                 progress.evaluations_since_best, progress.best_f1)
                        stop = True
            if end_of_epoch:
                progress.epoch, progress.next_batch = progress.epoch + 1, 0
            if end_of_epoch or stop or stop_signal.received or (
                    hp.checkpoint_every_steps and progress.step % hp.checkpoint_every_steps == 0):
                checkpoint = state.save(progress)
                if stop_signal.received:
                    raise TrainingStopped(f"stopped by {stop_signal.received} at epoch {progress.epoch}, "
                                          f"step {progress.step}: checkpoint {checkpoint} saved; the next run "
                                          f"with the same checkpoints resumes from it")
    if bar is not None:
        bar.close()
    tensorboard.flush()
    stop_signal.restore()
    if best_weights is None:
        raise DataError("training ran no evaluation: nothing to keep (is max_steps 0?)")
    model.set_weights(best_weights)
    validation_report = evaluate(predictor, data.validation)
    log.info("best validation F1 %.4f", validation_report.f1)

    test_report, test_predicted = None, None
    if data.test:
        test_predicted = predictor.predict_entities([sentence.tokens for sentence in data.test])
        test_report = score(data.test, test_predicted)
        log.info("test_precision=%.4f test_recall=%.4f test_f1=%.4f", test_report.micro.precision,
                 test_report.micro.recall, test_report.f1)
    if env.is_chief:
        _write_artifacts(env, predictor, validation_report, test_report, data.test, test_predicted)
    elapsed = time.monotonic() - started
    _, peak_rss = resources.host_memory_mib()
    log.info("training finished in %.1f s (%d steps); peak host RSS %.0f MiB; weights sha256 %s", elapsed,
             progress.step, peak_rss, _fingerprint(model))
    return TrainingResult(validation_report, test_report, progress.step, elapsed)


class StopSignal:
    """Turns SIGTERM into a flag the loop checks after each step.

    SageMaker stops a job (and interrupts managed spot jobs) with SIGTERM and kills it 120 s later; a
    Python process running as PID 1 in a container gets no default handler, so without this the job
    would die without saving. The loop finishes its step, saves a checkpoint and raises TrainingStopped.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame) -> None:
        self.received = signal.Signals(signum).name
        log.warning("received %s: saving a checkpoint after the current step, then exiting", self.received)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def _fingerprint(model: keras.Model) -> str:
    """A digest of the final weights, so that the workers of a multi-worker job can be seen to agree."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def _update_loss_scale(loss_scale: tf.Variable, finite: tf.Tensor) -> None:
    """Halve the float16 loss scale on overflow, double it slowly otherwise (the usual dynamic rule)."""
    loss_scale.assign(tf.where(finite, tf.minimum(loss_scale * 1.0005, 2.0 ** 24),
                               tf.maximum(loss_scale / 2.0, 1.0)))


def _distribute(strategy: tf.distribute.Strategy, *arrays: np.ndarray):
    """Split one global batch across the replicas (rows), or pass it through with a single replica."""
    if strategy.num_replicas_in_sync == 1:
        return tuple(tf.constant(array) for array in arrays)
    replicas = strategy.num_replicas_in_sync

    def shard(context: tf.distribute.InputContext, array: np.ndarray):
        part = np.array_split(array, replicas)[context.replica_id_in_sync_group]
        return tf.constant(part)

    return tuple(strategy.experimental_distribute_values_from_function(
        lambda context, array=array: shard(context, array)) for array in arrays)


def evaluate(predictor: Predictor, sentences: Sequence[Sentence]) -> EvaluationReport:
    """Strict entity-level scores of the predictor on whole sentences."""
    return score(sentences, predictor.predict_entities([sentence.tokens for sentence in sentences]))


def score(sentences: Sequence[Sentence], predicted: Sequence[Sequence[Entity]]) -> EvaluationReport:
    """Strict entity-level scores of predictions already made for ``sentences``."""
    return evaluate_entities([len(sentence.tokens) for sentence in sentences],
                             [sentence.entities for sentence in sentences], predicted)


def _write_artifacts(env: TrainingEnvironment, predictor: Predictor, validation: EvaluationReport,
                     test: EvaluationReport | None, test_sentences: Sequence[Sentence] | None,
                     test_predicted: Sequence[Sequence[Entity]] | None) -> None:
    predictor.save(env.model_dir)
    export_saved_model(predictor, env.model_dir)
    for directory in (env.model_dir, env.output_data_dir):
        write_report(validation, directory, "validation_report")
        if test is not None:
            write_report(test, directory, "test_report")
    if test_sentences and test_predicted is not None:
        _write_predictions(test_sentences, test_predicted, env.output_data_dir / "test_predictions.jsonl")
    tensorboard = env.output_dir / "tensorboard"
    if tensorboard.is_dir():
        shutil.copytree(tensorboard, env.output_data_dir / "tensorboard", dirs_exist_ok=True)


def _write_predictions(sentences: Sequence[Sentence], predicted: Sequence[Sequence[Entity]], path: Path) -> None:
    lines = []
    for sentence, entities in zip(sentences, predicted):
        lines.append(json.dumps({
            "text": "".join(sentence.tokens),
            "entities": [list(entity) for entity in sentence.entities],
            "predicted": [list(entity) for entity in entities],
        }, ensure_ascii=False))
    write_text_atomically(path, "\n".join(lines) + "\n")


def set_precision(hp: Hyperparameters) -> str:
    precision = hp.mixed_precision
    if precision == "auto":
        precision = "float16" if tf.config.list_physical_devices("GPU") else "float32"
    keras.mixed_precision.set_global_policy(
        {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[precision])
    return precision


def _progress_bar(total: int, done: int):
    """A progress bar only on an interactive terminal; logs get the periodic lines instead."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="step", dynamic_ncols=True)
