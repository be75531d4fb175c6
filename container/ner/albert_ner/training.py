"""The training job, top to bottom: data, model, optimizers, the loop (step, log, evaluate, checkpoint,
stop), then the best weights scored and written as the model.

A custom loop under a ``tf.distribute`` strategy rather than ``model.fit``: Keras 3 ``fit`` fails under
MultiWorkerMirroredStrategy, and owning the loop gives exact control of batching (length grouping),
of the two learning rates (encoder and head), and of where the data position is when a job stops.
Batching, the optimizers and the strategy live in ``batching.py``, ``optimization.py`` and ``cluster.py``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from albert_ner import __version__, resources
from albert_ner.artifacts import JobOutputs, write_artifacts
from albert_ner.batching import EncodedExamples, training_batches
from albert_ner.cluster import choose_strategy, strategy_name
from albert_ner.data import ReadReport, read_channel
from albert_ner.data_summary import SplitSummary, log_summaries, summarize_split
from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import DataError, HyperparameterError, TrainingStopped
from albert_ner.evaluation import EvaluatedSplit, EvaluationReport, evaluate
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.lexicon import Lexicon, choose_lexicon
from albert_ner.modeling.albert import AlbertConfig, sized_config
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.optimization import OptimizerSettings, TrainStep, make_loss_scale, make_optimizers, set_precision
from albert_ner.prediction import Predictor
from albert_ner.pretrained.checkpoint import PretrainedFiles, find_pretrained, load_pretrained, read_pretrained_config
from albert_ner.pretrained.sources import choose_pretrained
from albert_ner.pretraining import MLM_DIRECTORY, pretrain_encoder
from albert_ner.report_page import REPORT_PAGE, ReportPage, write_report_page
from albert_ner.scored_text import uncovered
from albert_ner.self_training import pseudo_labelled
from albert_ner.sentences import Sentence, WeightedSentences
from albert_ner.stop_signal import StopSignal
from albert_ner.tag_schemes import LabelMap
from albert_ner.teacher import TEACHER_CHANNEL, teacher_sentences, type_mapping
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training_history import TrainingHistory
from albert_ner.training_state import Progress, TrainingState, checkpoint_due, weights_fingerprint
from albert_ner.unlabelled import UNLABELLED_CHANNEL, read_unlabelled
from albert_ner.validation import Validation
from albert_ner.warm_start import MODEL_CHANNEL, WarmStart, find_warm_start, warm_started_tagger

log = logging.getLogger("albert_ner.training")


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
    pretrained: PretrainedFiles | None
    provenance: dict | None  # where the pretrained encoder came from (model_config.json keeps it)
    encoder_description: str  # the same, or how the encoder was built from scratch, in words
    summaries: list[SplitSummary]
    lexicon: Lexicon | None
    warm_start: WarmStart | None  # the model of the `model` channel, whose weights the job starts from
    teacher: WeightedSentences  # the `teacher` channel's sentences trained on beside `train` (none without one)
    unlabelled: list[Sentence]  # the `unlabelled` channel's text, which self-training tags (none without it)

    def training_sentences(self) -> WeightedSentences:
        """What the loop trains on: the gold sentences (weight 1), then the teacher's with their weights."""
        return WeightedSentences(self.train, [1.0] * len(self.train)) + self.teacher

    @property
    def fine_tuning(self) -> bool:
        """Whether the encoder starts trained (pretrained or warm-started), which sets its learning rate."""
        return self.pretrained is not None or self.warm_start is not None


def prepare_data(hp: Hyperparameters, env: TrainingEnvironment) -> PreparedData:
    """Read the channels, split off validation data, and settle the vocabulary and label map."""
    channels = env.channel_input_dirs
    if "training" not in channels:
        raise DataError(f"no `training` channel: put labelled files under "
                        f"{env.base_dir / 'input' / 'data' / 'training'} (found channels: "
                        f"{sorted(channels) or 'none'})")
    train, report = _read(channels["training"], hp, "training")
    repairs: dict[str, int | None] = {"training": report.repairs, "validation": None, "test": None}
    if "validation" in channels:
        validation, validation_report = _read(channels["validation"], hp, "validation")
        repairs["validation"] = validation_report.repairs
    else:
        train, validation = _split(train, hp.validation_split, hp.seed)
        log.info("validation: %d sentences held out of training (validation_split=%s, seed=%d)",
                 len(validation), hp.validation_split, hp.seed)
    test = None
    if "test" in channels:
        test, test_report = _read(channels["test"], hp, "test")
        repairs["test"] = test_report.repairs
    scored = validation + (test or [])  # no extra channel's text may be one of these
    taught = uncovered(_read(channels[TEACHER_CHANNEL], hp, TEACHER_CHANNEL)[0], train, scored,
                       TEACHER_CHANNEL) if TEACHER_CHANNEL in channels else []
    if hp.teacher_type_mapping and TEACHER_CHANNEL not in channels:
        raise HyperparameterError(f"hyperparameter teacher_type_mapping={hp.teacher_type_mapping!r} without a "
                                  f"`{TEACHER_CHANNEL}` channel to rename the types of")
    unlabelled = _unlabelled(hp, channels.get(UNLABELLED_CHANNEL), train, scored)

    warm = find_warm_start(channels[MODEL_CHANNEL]) if MODEL_CHANNEL in channels else None
    source = choose_pretrained(channels.get("pretrained"), hp.pretrained_model, hp.pretrained_dir,
                               None if warm else env.baked_pretrained_dir, env.environ)
    if warm is not None and source is not None:
        raise HyperparameterError(f"a `{MODEL_CHANNEL}` channel and a pretrained encoder (the `pretrained` channel, "
                                  "pretrained_model or pretrained_dir): the model's own encoder is the starting "
                                  "point; give one of the two")
    pretrained: PretrainedFiles | None = None
    provenance = None
    lower_case = hp.lower_case
    if warm is not None:
        vocab, lower_case = warm.description.tokenizer.vocab, warm.description.tokenizer.lower_case
        albert_config = AlbertConfig(**warm.description.tagger_config["albert_config"])
        provenance = warm.description.pretrained
        description = f"warm-started from the {warm.describe()}"
    elif source is not None:
        pretrained = find_pretrained(source.directory)
        albert_config = read_pretrained_config(pretrained)
        vocab = Vocab.from_file(pretrained.vocab_path)
        provenance = source.provenance()
        provenance_text = json.dumps(provenance, ensure_ascii=False, sort_keys=True)
        description = (f"pretrained ALBERT {pretrained.weights} ({albert_config.family} family, hidden "
                       f"{albert_config.hidden_size}, {albert_config.num_hidden_layers} layers), "
                       f"from {provenance_text}")
        log.info("pretrained ALBERT: %s (%s family, hidden %d, %d layers), %s files; provenance %s",
                 source.directory, albert_config.family, albert_config.hidden_size, albert_config.num_hidden_layers,
                 pretrained.layout, provenance_text)
    else:
        vocab = Vocab.build([sentence.tokens for sentence in train + taught + unlabelled],
                            min_count=hp.vocab_min_count)
        albert_config = sized_config(hp.encoder_size, len(vocab), hp.num_hidden_layers)
        description = (f"no pretrained weights: ALBERT-{hp.encoder_size}-sized encoder trained from scratch "
                       f"(hidden {albert_config.hidden_size}, {albert_config.num_hidden_layers} layers), "
                       f"vocabulary of {len(vocab)} built from the training data")
        log.info("no pretrained weights: ALBERT-%s-sized encoder from scratch, vocabulary of %d built from "
                 "the training data", hp.encoder_size, len(vocab))
    if hp.max_seq_length > albert_config.max_position_embeddings:
        raise HyperparameterError(f"hyperparameter max_seq_length={hp.max_seq_length}: the encoder has only "
                                  f"{albert_config.max_position_embeddings} positions")
    if warm is not None:
        warm.check_entity_types(_found_types(train + validation), hp.entity_types)
        if "lexicon" in channels:
            raise DataError(f"a `lexicon` channel with a `{MODEL_CHANNEL}` channel: the model's features are its own "
                            "dictionaries' (model/lexicon.txt); train from the pretrained encoder to change them")
        label_map, lexicon = warm.description.label_map, warm.description.lexicon
    else:
        label_map = LabelMap(_entity_types(hp, train + validation), scheme=hp.tag_scheme)
        lexicon = _read_lexicon(hp, channels.get("lexicon"), train)
    teacher = teacher_sentences(taught, label_map.entity_types, type_mapping(hp.teacher_type_mapping),
                                hp.teacher_weight) if TEACHER_CHANNEL in channels else WeightedSentences([], [])
    tokenizer = CharTokenizer(vocab, lower_case=lower_case)
    summaries = [summarize_split(name, sentences, tokenizer, hp.max_seq_length - 2, repairs[name])
                 for name, sentences in (("training", train), ("validation", validation), ("test", test or []))
                 if sentences]
    data = PreparedData(train, validation, test, tokenizer, label_map, albert_config, pretrained, provenance,
                        description, summaries, lexicon, warm, teacher, unlabelled)
    log_summaries(summaries)
    log.info("labels (%s): %s", label_map.scheme, " ".join(label_map.tags))
    return data


def _unlabelled(hp: Hyperparameters, channel: Path | None, gold: list[Sentence],
                held_out: list[Sentence]) -> list[Sentence]:
    """The `unlabelled` channel's text that self-training tags and pretraining reads (none of gold's,
    validation's or test's)."""
    if channel is None:
        if hp.self_training_rounds:
            raise HyperparameterError(f"hyperparameter self_training_rounds={hp.self_training_rounds}: self-training "
                                      f"tags the text of an `{UNLABELLED_CHANNEL}` channel, and there is none")
        return []
    if not hp.self_training_rounds and not hp.mlm_steps:
        log.info("channel %s: not read, as self_training_rounds and mlm_steps are 0", UNLABELLED_CHANNEL)
        return []
    return uncovered(read_unlabelled(channel), gold, held_out, UNLABELLED_CHANNEL)


def _read_lexicon(hp: Hyperparameters, channel: Path | None, train: Sequence[Sentence]) -> Lexicon | None:
    """The dictionaries ``lexicon`` asks for, with how much of the training data they cover, logged."""
    lexicon = choose_lexicon(hp.lexicon, channel)
    if lexicon is None:
        log.info("lexicon: off")
        return None
    covered, characters = lexicon.matcher.coverage(sentence.tokens for sentence in train)
    found: dict[str, list[int]] = {}
    for sentence in train:
        for entity in sentence.entities:
            counts = found.setdefault(entity.type, [0, 0])
            counts[0] += "".join(sentence.tokens[entity.start:entity.end]) in lexicon.words
            counts[1] += 1
    log.info("lexicon from %s: %s; words of two or more characters cover %d of %d training characters "
             "(%.1f%%); training entities that are dictionary words: %s", "; ".join(lexicon.sources),
             lexicon.describe(), covered, characters, 100 * covered / max(characters, 1),
             ", ".join(f"{name} {hits}/{total}" for name, (hits, total) in sorted(found.items())) or "none")
    return lexicon


def _read(directory: Path, hp: Hyperparameters, channel: str) -> tuple[list[Sentence], ReadReport]:
    sentences, report = read_channel(directory, **hp.read_options())
    log.info("channel %s: %s", channel, report.describe())
    return sentences, report


def _split(sentences: list[Sentence], share: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    order = np.random.default_rng(seed).permutation(len(sentences))
    held_out = max(1, int(round(len(sentences) * share)))
    if held_out >= len(sentences):
        raise DataError(f"only {len(sentences)} training sentence(s): too few to hold out a validation "
                        f"split; add a `validation` channel")
    keep, hold = sorted(order[held_out:]), sorted(order[:held_out])
    return [sentences[i] for i in keep], [sentences[i] for i in hold]


def _found_types(sentences: Sequence[Sentence]) -> list[str]:
    return sorted({entity.type for sentence in sentences for entity in sentence.entities})


def _entity_types(hp: Hyperparameters, sentences: Sequence[Sentence]) -> list[str]:
    found = _found_types(sentences)
    if hp.entity_types is None:
        if not found:
            raise DataError("the training data holds no entities: nothing to learn")
        return found
    unknown = sorted(set(found) - set(hp.entity_types))
    if unknown:
        raise HyperparameterError(f"hyperparameter entity_types={hp.entity_types!r}: the data also has "
                                  f"{unknown}")
    return sorted(set(hp.entity_types))


# ------------------------------------------------------------------------------------------- loop
@dataclass
class TrainingResult:
    validation: EvaluationReport
    test: EvaluationReport | None
    steps: int
    seconds: float


@dataclass
class Job:
    """What the loop works on, built by :func:`set_up` (and for each self-training round by
    :func:`set_up_round`): the data, the model and its step, and where it stands."""

    data: PreparedData
    examples: EncodedExamples
    steps_per_epoch: int
    total_steps: int
    model: AlbertTagger
    train_step: TrainStep
    state: TrainingState
    predictor: Predictor
    progress: Progress
    validation: Validation
    strategy: tf.distribute.Strategy
    precision: str
    setup: dict[str, str]  # precision and strategy, for the report page


def train(hp: Hyperparameters, env: TrainingEnvironment) -> TrainingResult:
    """Run one training job end to end (resuming from its checkpoints) and write its model and reports."""
    started = time.monotonic()
    history = TrainingHistory()
    stop_signal = StopSignal()
    job = set_up(hp, env, history)
    if hp.mlm_steps and job.progress.step:
        log.info("masked-language-model pretraining: skipped, the job resumes from its fine-tuning checkpoint")
    elif hp.mlm_steps:
        data = job.data
        pretrain_encoder(job.model, data.training_sentences().sentences + data.unlabelled, hp, data.tokenizer,
                         data.label_map, job.strategy, job.precision, env.checkpoint_dir / MLM_DIRECTORY,
                         env.is_chief, data.fine_tuning, stop_signal, history)
    run_loop(job, hp, history, stop_signal)
    steps = job.progress.step
    rounds = hp.self_training_rounds if job.data.unlabelled else 0
    if hp.self_training_rounds and not rounds:
        log.info("self-training: skipped, none of the unlabelled text is left to tag")
    for number in range(1, rounds + 1):
        following = self_training_round(hp, env, history, stop_signal, job, number)
        steps = history.step_offset + following.progress.step  # a round not kept ran its steps too
        if following.progress.best_f1 <= job.progress.best_f1:
            del following  # its optimizers' slots: the round before's model stays
            break
        job = following
    history.tensorboard.flush()
    stop_signal.restore()

    job.model.set_weights(job.validation.best_weights)
    evaluated = final_evaluation(job.predictor, job.data)
    history.lap("final evaluation")
    fingerprint = weights_fingerprint(job.model)
    if env.is_chief:
        write_artifacts(JobOutputs(env.model_dir, env.output_data_dir, env.output_dir / "tensorboard"),
                        job.predictor, evaluated, hp.onnx_export, job.data.train)
        history.lap("writing the model")
        write_report_page(env.output_data_dir / REPORT_PAGE, ReportPage(
            "albert-ner training report", evaluated, job.data.summaries, history, hp.to_dict(),
            {"stopped": _why_stopped(hp, job), **job.setup}, _provenance(hp, job, env.model_dir, fingerprint)))
    elapsed = time.monotonic() - started
    _, peak_rss = resources.host_memory_mib()
    log.info("training finished in %.1f s (%d steps); peak host RSS %.0f MiB; weights sha256 %s", elapsed, steps,
             peak_rss, fingerprint)
    reports = {split.name: split.report for split in evaluated}
    return TrainingResult(reports["validation"], reports.get("test"), steps, elapsed)


def self_training_round(hp: Hyperparameters, env: TrainingEnvironment, history: TrainingHistory,
                        stop_signal: StopSignal, job: Job, number: int) -> Job:
    """Tag the unlabelled text with ``job``'s best model, and train on gold plus what it is sure of."""
    job.model.set_weights(job.validation.best_weights)
    log.info("self-training round %d: tagging with the best model of the round before (validation F1 %.4f, weights "
             "sha256 %s)", number, job.progress.best_f1, weights_fingerprint(job.model))
    pseudo = pseudo_labelled(job.predictor, job.data.unlabelled, hp.self_training_threshold, hp.self_training_weight,
                             number)
    history.lap("self-training: tagging the unlabelled text")
    following = set_up_round(hp, env, history, job, pseudo, number)
    run_loop(following, hp, history, stop_signal)
    better = following.progress.best_f1 > job.progress.best_f1
    log.info("self-training round %d: best validation F1 %.4f against %.4f before it%s", number,
             following.progress.best_f1, job.progress.best_f1,
             "" if better else ": no better, so self-training stops with the model of the round before")
    rounds = [part for part in [job.setup.get("self-training")] if part]
    rounds.append(f"round {number}: {len(pseudo.sentences):,} pseudo-labelled sentences, validation F1 "
                  f"{following.progress.best_f1:.4f}{'' if better else ' (no better: not kept)'}")
    job.setup["self-training"] = following.setup["self-training"] = "; ".join(rounds)
    return following


def run_loop(job: Job, hp: Hyperparameters, history: TrainingHistory, stop_signal: StopSignal) -> None:
    """Step, log, evaluate and checkpoint from where ``job`` stands until its steps are done or early
    stopping ends it; the best weights are then in ``job.validation``."""
    progress, optimizer = job.progress, job.state.optimizers[0]
    batches = training_batches(job.examples, hp.batch_size, hp.seed, hp.length_grouping, hp.token_dropout,
                               job.data.tokenizer.vocab.unk_id, progress.epoch, progress.next_batch)
    meter = resources.ThroughputMeter()
    bar = _progress_bar(job.total_steps, progress.step)
    losses: list[tf.Tensor] = []
    # A job that stopped early saved that in its last checkpoint: resumed, it stays stopped.
    patience = hp.early_stopping_patience
    stop = progress.step >= job.total_steps or bool(patience and progress.evaluations_since_best >= patience)
    batch = None if stop else next(batches)
    while batch is not None:
        step_started = time.perf_counter()
        losses.append(job.train_step(batch.token_ids, batch.tag_ids, batch.lengths, batch.lexicon, batch.weights))
        progress.step, progress.next_batch = progress.step + 1, batch.index + 1
        stepped = time.perf_counter()
        stop = progress.step >= job.total_steps
        upcoming = None if stop else next(batches)  # built while the device still runs the step
        meter.add(len(batch.lengths), int(batch.lengths.sum()), data_seconds=time.perf_counter() - stepped,
                  step_seconds=stepped - step_started)
        if bar is not None:
            bar.update(1)
        if progress.step % hp.log_every_steps == 0 or stop:
            _log_progress(progress, job.total_steps, losses, optimizer, meter, history)
            losses = []
        if batch.last_in_epoch or stop or (hp.eval_every_steps and progress.step % hp.eval_every_steps == 0):
            stop = job.validation.run(progress) or stop
        if batch.last_in_epoch:
            progress.epoch, progress.next_batch = progress.epoch + 1, 0
        if checkpoint_due(hp.checkpoint_every_steps, progress, batch.last_in_epoch or stop, stop_signal):
            _save_checkpoint(job.state, progress, stop_signal, history)
        batch = None if stop else upcoming
    if bar is not None:
        bar.close()
    log.info("the training step was traced %d time(s) for the batch shapes it met", job.train_step.traces)
    if job.validation.best_weights is None:
        raise DataError("training ran no evaluation: nothing to keep (is max_steps 0?)")
    history.lap("training")


def set_up(hp: Hyperparameters, env: TrainingEnvironment, history: TrainingHistory) -> Job:
    """Seed, precision and strategy; the data; the model, its optimizers and step; the state to resume from."""
    keras.utils.set_random_seed(hp.seed)
    precision = set_precision(hp.mixed_precision)
    strategy = choose_strategy(env.hosts, env.current_host, env.worker_port, env.network_interface_name)
    log.info("albert-ner %s, TensorFlow %s, Keras %s; devices: %s; strategy %s with %d replica(s); precision %s",
             __version__, tf.__version__, keras.__version__, resources.describe_devices(), strategy_name(strategy),
             strategy.num_replicas_in_sync, precision)
    log.info("hyperparameters: %s", json.dumps(hp.to_dict(), ensure_ascii=False, sort_keys=True))

    data = prepare_data(hp, env)
    history.lap("reading the data")
    vocab = data.tokenizer.vocab
    with strategy.scope():
        if data.warm_start is not None:
            model = warm_started_tagger(data.warm_start, hp.dropout)
        else:
            model = AlbertTagger(data.albert_config, len(data.label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id,
                                 pad_id=vocab.pad_id, lstm_units=hp.lstm_units, dropout=hp.dropout,
                                 use_crf=hp.use_crf,
                                 lexicon_size=0 if data.lexicon is None else data.lexicon.matcher.feature_size,
                                 allowed=data.label_map.allowed_transitions())
            build_model(model, vocab.pad_id)
            if data.pretrained is not None:
                load_pretrained(model.encoder, data.pretrained)
    log.info("peak learning rates: encoder %g, head %g", hp.encoder_learning_rate(data.fine_tuning),
             hp.head_learning_rate)
    log.info("model: %s parameters (encoder %s, head %s)", f"{model.count_params():,}",
             f"{sum(int(np.prod(v.shape)) for v in model.encoder.trainable_variables):,}",
             f"{sum(int(np.prod(v.shape)) for v in model.head_variables):,}")
    predictor = Predictor.of_model(model, data.tokenizer, data.label_map, hp.max_seq_length, hp.eval_batch_size,
                                   pretrained=data.provenance, lexicon=data.lexicon)
    # After the strategy exists: a multi-worker strategy must be configured before TensorFlow's context starts.
    history.tensorboard = tf.summary.create_file_writer(str(env.output_dir / "tensorboard"))
    job = _job_on(hp, env, history, data, data.training_sentences(), model, predictor, strategy, precision,
                  env.checkpoint_dir)
    history.lap("building the model")
    return job


def set_up_round(hp: Hyperparameters, env: TrainingEnvironment, history: TrainingHistory, previous: Job,
                 pseudo: WeightedSentences, number: int) -> Job:
    """Self-training round ``number``: the same model, from the weights it has (the round before's best),
    on the gold (and teacher) sentences plus ``pseudo``, with optimizers and checkpoints of its own
    (``checkpoints/self-training-N``), so that a resumed job replays the rounds it finished and resumes
    the one it was in. Its steps follow the round before's on the curves."""
    history.step_offset += previous.progress.step
    log.info("self-training round %d: training on the gold sentences and %d pseudo-labelled ones", number,
             len(pseudo.sentences))
    return _job_on(hp, env, history, previous.data, previous.data.training_sentences() + pseudo, previous.model,
                   previous.predictor, previous.strategy, previous.precision,
                   env.checkpoint_dir / f"self-training-{number}")


def _job_on(hp: Hyperparameters, env: TrainingEnvironment, history: TrainingHistory, data: PreparedData,
            training: WeightedSentences, model: AlbertTagger, predictor: Predictor, strategy: tf.distribute.Strategy,
            precision: str, state_dir: Path) -> Job:
    """The loop's work on ``training`` with ``model``: examples, schedule, optimizers, step, and the state
    in ``state_dir`` it resumes from."""
    examples = EncodedExamples(training.sentences, hp.max_seq_length - 2, data.tokenizer, data.label_map,
                               None if data.lexicon is None else data.lexicon.matcher, training.weights)
    steps_per_epoch = math.ceil(len(examples) / hp.batch_size)
    total_steps = min(hp.max_steps or steps_per_epoch * hp.epochs, steps_per_epoch * hp.epochs)
    log.info("training on %d windows: %d steps per epoch, %d steps in all", len(examples), steps_per_epoch,
             total_steps)
    with strategy.scope():
        optimizers = make_optimizers(model, OptimizerSettings.of(hp, data.fine_tuning), total_steps)
        loss_scale = make_loss_scale(precision)
        state = TrainingState(state_dir, model, optimizers, loss_scale, keep=hp.keep_checkpoints,
                              writer=env.is_chief)
    train_step = TrainStep(model, optimizers, loss_scale, strategy, hp.clip_norm, precision)
    progress = state.restore() or Progress()
    if progress.step:
        history.resume(state_dir, history.step_offset + progress.step)
    validation = Validation(predictor, data.validation, state, history, hp.early_stopping_patience,
                            state.load_best_weights() if progress.step else None)
    setup = {"training windows": f"{len(examples):,}", "precision": precision,
             "strategy": f"{strategy_name(strategy)} with {strategy.num_replicas_in_sync} replica(s)"}
    return Job(data, examples, steps_per_epoch, total_steps, model, train_step, state, predictor, progress,
               validation, strategy, precision, setup)


def final_evaluation(predictor: Predictor, data: PreparedData) -> list[EvaluatedSplit]:
    """The kept weights scored on validation, then on the test set if there is one: the test set's only use."""
    evaluated = []
    for name, sentences in (("validation", data.validation), ("test", data.test)):
        if not sentences:
            continue
        predicted = predictor.predict_entities(_tokens(sentences))
        report = evaluate(sentences, predicted)
        if name == "validation":
            log.info("best validation F1 %.4f", report.f1)
        else:
            log.info("test_precision=%.4f test_recall=%.4f test_f1=%.4f", report.micro.precision,
                     report.micro.recall, report.f1)
        evaluated.append(EvaluatedSplit(name, sentences, predicted, report))
    return evaluated


def _log_progress(progress: Progress, total_steps: int, losses: list[tf.Tensor],
                  encoder_optimizer: keras.optimizers.Optimizer, meter: resources.ThroughputMeter,
                  history: TrainingHistory) -> None:
    """The progress line: the mean loss since the last one, the learning rate, throughput and its split."""
    waited = time.perf_counter()
    mean_loss = sum(float(loss) for loss in losses) / len(losses)  # the one place the host waits for steps
    meter.add_wait(time.perf_counter() - waited)
    learning_rate, throughput = float(encoder_optimizer.learning_rate), meter.report()
    log.info("epoch=%d step=%d/%d train_loss=%.4f lr=%.3g %s", progress.epoch, progress.step, total_steps,
             mean_loss, learning_rate, throughput)
    history.record_log(progress.step, progress.epoch, mean_loss, learning_rate, throughput.sentences_per_sec)


def _save_checkpoint(state: TrainingState, progress: Progress, stop_signal: StopSignal,
                     history: TrainingHistory) -> None:
    """Save the loop's state; the history goes first, so that it never lacks steps a checkpoint holds."""
    if state.writer:
        history.save(state.directory)
    checkpoint = state.save(progress)
    if stop_signal.received:
        raise TrainingStopped(f"stopped by {stop_signal.received} at epoch {progress.epoch}, step "
                              f"{progress.step}: checkpoint {checkpoint} saved; the next run with the same "
                              f"checkpoints resumes from it")


def _why_stopped(hp: Hyperparameters, job: Job) -> str:
    progress = job.progress
    if progress.step < job.total_steps:
        return (f"early stopping at step {progress.step:,} (no better validation F1 in "
                f"{progress.evaluations_since_best} evaluations)")
    if job.total_steps < job.steps_per_epoch * hp.epochs:
        return f"max_steps={hp.max_steps:,} reached"
    return f"all {hp.epochs} epochs run"


def _tokens(sentences: Sequence[Sentence]) -> list[tuple[str, ...]]:
    return [sentence.tokens for sentence in sentences]


def _provenance(hp: Hyperparameters, job: Job, model_dir: Path, fingerprint: str) -> dict[str, str]:
    """Where the model came from, for the report page: encoder, lexicon, learning rates, size, devices."""
    pretrained = job.data.fine_tuning
    lexicon = job.data.lexicon
    return {"encoder": job.data.encoder_description,
            "lexicon": "none" if lexicon is None else f"{'; '.join(lexicon.sources)}: {lexicon.describe()}",
            "peak learning rates": f"encoder {hp.encoder_learning_rate(pretrained):g}, head {hp.head_learning_rate:g}",
            "parameters": f"{job.model.count_params():,}", "devices": resources.describe_devices(),
            "model directory": str(model_dir), "weights sha256 (first 16 digits)": fingerprint}


def _progress_bar(total: int, done: int):
    """A progress bar only on an interactive terminal; logs get the periodic lines instead."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="step", dynamic_ncols=True)
