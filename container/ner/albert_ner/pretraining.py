"""Masked-language-model pretraining of the encoder on the job's own text, before fine-tuning: what an
encoder trained from scratch otherwise lacks (it sees each character only in labelled sentences), and
what adapts a pretrained one to the domain.

For ``mlm_steps`` steps over the training text (gold and teacher sentences, and the ``unlabelled``
channel's), a share ``mlm_mask_rate`` of the characters is chosen; BERT's rule replaces 80% of those with
[MASK], 10% with a random character (never a special token) and keeps 10%, and the model predicts the originals
(:class:`~albert_ner.modeling.masked_lm.MaskedLanguageModel`, ALBERT's head with tied embeddings). The
encoder is the tagger's own, so fine-tuning starts from what it learned; the head is dropped.

The steps checkpoint under ``checkpoints/mlm`` like the fine-tuning ones, and the masks are seeded by the
step, so an interrupted job resumes the pretraining exactly; a job that has fine-tuning checkpoints
skips it (they hold the encoder already).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from albert_ner.batching import EncodedExamples, training_batches
from albert_ner.errors import TrainingStopped
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.modeling.masked_lm import NOT_MASKED, MaskedLanguageModel
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.optimization import OptimizerSettings, TrainStep, make_loss_scale, make_optimizers
from albert_ner.sentences import Sentence
from albert_ner.stop_signal import StopSignal
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training_history import TrainingHistory
from albert_ner.training_state import Progress, TrainingState, checkpoint_due

log = logging.getLogger("albert_ner.training")

MLM_DIRECTORY = "mlm"
#: Windows the masked-token loss is measured on, before and after (the same ones, masked the same way).
_PROBE_WINDOWS = 256


@dataclass(frozen=True)
class PretrainingResult:
    """The mean masked-character loss on the probe windows before and after the pretraining."""

    before: float
    after: float


def mask_characters(token_ids: np.ndarray, lengths: np.ndarray, rate: float, vocab: Vocab,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masking of a padded batch: ``(inputs, targets)``, targets the original ids of the chosen
    characters and NOT_MASKED elsewhere (padding is never chosen)."""
    chosen = (np.arange(token_ids.shape[1]) < lengths[:, None]) & (rng.random(token_ids.shape) < rate)
    draw = rng.random(token_ids.shape)
    inputs = np.where(chosen & (draw < 0.8), vocab.mask_id, token_ids)
    randomised = chosen & (draw >= 0.8) & (draw < 0.9)
    replacements = rng.integers(0, len(vocab), token_ids.shape)
    special = np.isin(replacements, [vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id])
    replacements = np.where(special, token_ids, replacements)  # a random character, never a special token
    inputs = np.where(randomised, replacements, inputs).astype(token_ids.dtype)
    return inputs, np.where(chosen, token_ids, NOT_MASKED).astype(np.int32)


def pretrain_encoder(tagger: AlbertTagger, sentences: Sequence[Sentence], hp: Hyperparameters,
                     tokenizer: CharTokenizer, label_map: LabelMap, strategy: tf.distribute.Strategy, precision: str,
                     directory: Path, writer: bool, fine_tuning: bool, stop_signal: StopSignal,
                     history: TrainingHistory) -> PretrainingResult:
    """Train ``tagger``'s encoder as a masked language model on ``sentences`` for ``hp.mlm_steps`` steps
    (resuming from ``directory``'s checkpoint), at the encoder's learning rate."""
    vocab = tokenizer.vocab
    examples = EncodedExamples(sentences, hp.max_seq_length - 2, tokenizer, label_map)  # the tags go unused
    with strategy.scope():
        model = MaskedLanguageModel(tagger)
        rate = hp.encoder_learning_rate(fine_tuning)
        optimizers = make_optimizers(model, OptimizerSettings(rate, rate, hp.warmup_proportion, hp.weight_decay,
                                                              None), hp.mlm_steps)
        loss_scale = make_loss_scale(precision)
        state = TrainingState(directory, model, optimizers, loss_scale, keep=hp.keep_checkpoints, writer=writer)
    step = TrainStep(model, optimizers, loss_scale, strategy, hp.clip_norm, precision)
    probe = _probe(examples, hp, vocab)
    progress = state.restore() or Progress()
    before = _masked_loss(model, probe)
    log.info("masked-language-model pretraining: %d steps on %d windows of %d sentences, %g of the characters "
             "masked, learning rate %g; masked-character loss on %d windows %.4f%s", hp.mlm_steps, len(examples),
             len(sentences), hp.mlm_mask_rate, rate, len(probe[0]), before,
             f" (resumed at step {progress.step})" if progress.step else "")
    batches = training_batches(examples, hp.batch_size, hp.seed, hp.length_grouping, 0.0, vocab.unk_id,
                               progress.epoch, progress.next_batch)
    losses: list[float] = []
    while progress.step < hp.mlm_steps:
        batch = next(batches)
        rng = np.random.default_rng([hp.seed, progress.step])  # by the step: a resumed run masks the same
        inputs, targets = mask_characters(batch.token_ids, batch.lengths, hp.mlm_mask_rate, vocab, rng)
        loss = step(inputs, targets, batch.lengths, batch.lexicon)
        losses.append(float(loss) * len(targets) / max(1, int((targets != NOT_MASKED).sum())))
        progress.step, progress.next_batch = progress.step + 1, batch.index + 1
        if batch.last_in_epoch:
            progress.epoch, progress.next_batch = progress.epoch + 1, 0
        done = progress.step >= hp.mlm_steps
        if progress.step % hp.log_every_steps == 0 or done:
            log.info("masked-language-model step=%d/%d masked_loss=%.4f", progress.step, hp.mlm_steps,
                     sum(losses) / len(losses))
            losses = []
        if checkpoint_due(hp.checkpoint_every_steps, progress, done, stop_signal):
            checkpoint = state.save(progress)
            if stop_signal.received:
                raise TrainingStopped(f"stopped by {stop_signal.received} at masked-language-model step "
                                      f"{progress.step}: checkpoint {checkpoint} saved; the next run with the same "
                                      "checkpoints resumes from it")
    after = _masked_loss(model, probe)
    log.info("masked-language-model pretraining done: masked-character loss on the %d windows %.4f, was %.4f",
             len(probe[0]), after, before)
    history.lap("masked-language-model pretraining")
    return PretrainingResult(before, after)


def _probe(examples: EncodedExamples, hp: Hyperparameters, vocab: Vocab) -> tuple[np.ndarray, ...]:
    """A fixed masked batch of up to _PROBE_WINDOWS windows, to measure the loss on."""
    indices = np.sort(np.random.default_rng(hp.seed).permutation(len(examples))[:_PROBE_WINDOWS])
    token_ids, _, lengths, lexicon = examples.batch(indices)
    inputs, targets = mask_characters(token_ids, lengths, hp.mlm_mask_rate, vocab, np.random.default_rng([hp.seed]))
    return inputs, targets, lengths, lexicon


def _masked_loss(model: MaskedLanguageModel, probe: tuple[np.ndarray, ...]) -> float:
    """The mean cross-entropy per masked character of ``probe``."""
    inputs, targets, lengths, lexicon = probe
    hidden = model(tf.constant(inputs), tf.constant(lengths), tf.constant(lexicon), training=False)
    total = float(tf.reduce_sum(model.per_example_loss(hidden, tf.constant(targets), tf.constant(lengths))))
    return total / max(1, int((targets != NOT_MASKED).sum()))
