"""Masked-language-model pretraining of the encoder: BERT's masking, a masked-character loss that falls on
a small corpus while the tagger's head stays as it was, and a job whose fine-tuning starts from the
pretrained encoder (and skips the pretraining when it resumes from fine-tuning checkpoints)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

from albert_ner import training
from albert_ner.data import read_data_file
from albert_ner.environment import TrainingEnvironment
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.modeling.albert import sized_config
from albert_ner.modeling.masked_lm import NOT_MASKED
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.pretraining import mask_characters, pretrain_encoder
from albert_ner.stop_signal import StopSignal
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training_history import TrainingHistory
from conftest import SAMPLE, TINY_HYPERPARAMETERS, OptMl


def test_masking_follows_berts_rule_and_never_touches_padding() -> None:
    vocab = Vocab.build([tuple("张三李四王五赵六北京上海南京广州")])
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, len(vocab), (400, 50)).astype(np.int32)
    lengths = rng.integers(1, 51, 400).astype(np.int32)
    real = np.arange(50) < lengths[:, None]
    token_ids[~real] = vocab.pad_id
    inputs, targets = mask_characters(token_ids, lengths, 0.3, vocab, np.random.default_rng(1))

    chosen = targets != NOT_MASKED
    assert not (chosen & ~real).any() and (inputs[~real] == vocab.pad_id).all()
    np.testing.assert_array_equal(targets[chosen], token_ids[chosen])
    assert chosen.sum() / real.sum() == pytest.approx(0.3, abs=0.01)
    masked, kept = (inputs[chosen] == vocab.mask_id).mean(), (inputs[chosen] == token_ids[chosen]).mean()
    # Kept: the 10% left as they are, and the random draws that hit the character itself or a special token.
    assert masked == pytest.approx(0.8, abs=0.02) and kept == pytest.approx(0.1 + 0.1 * 6 / len(vocab), abs=0.02)
    replaced = chosen & (inputs != token_ids) & (inputs != vocab.mask_id)
    assert replaced.mean() > 0 and not np.isin(inputs[replaced], [vocab.pad_id, vocab.unk_id, vocab.cls_id,
                                                                   vocab.sep_id]).any()
    np.testing.assert_array_equal(inputs[~chosen], token_ids[~chosen])
    again = mask_characters(token_ids, lengths, 0.3, vocab, np.random.default_rng(1))
    np.testing.assert_array_equal(again[0], inputs)  # seeded: a resumed job masks the same characters


def test_pretraining_lowers_the_masked_character_loss_and_leaves_the_tagging_head_alone(tmp_path) -> None:
    sentences = read_data_file(SAMPLE / "train.txt")[0][:240]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    label_map = LabelMap(sorted({e.type for s in sentences for e in s.entities}), scheme="bioes")
    tf.keras.utils.set_random_seed(0)
    tagger = AlbertTagger(sized_config("tiny", len(vocab), 1), len(label_map), cls_id=vocab.cls_id,
                          sep_id=vocab.sep_id, pad_id=vocab.pad_id, lstm_units=8,
                          allowed=label_map.allowed_transitions())
    build_model(tagger, vocab.pad_id)
    head_before = [variable.numpy().copy() for variable in tagger.head_variables]
    encoder_before = [variable.numpy().copy() for variable in tagger.encoder.trainable_variables]
    hp = Hyperparameters(mlm_steps=80, batch_size=16, max_seq_length=64, learning_rate=2e-3, warmup_proportion=0.05,
                         log_every_steps=20, checkpoint_every_steps=0)

    result = pretrain_encoder(tagger, sentences, hp, CharTokenizer(vocab), label_map, tf.distribute.get_strategy(),
                              "float32", tmp_path / "mlm", True, False, StopSignal(), TrainingHistory())

    assert result.after < result.before - 0.5, result  # from about ln(vocabulary) down
    assert result.before == pytest.approx(np.log(len(vocab)), rel=0.15)
    for before, variable in zip(head_before, tagger.head_variables, strict=True):
        np.testing.assert_array_equal(variable.numpy(), before)
    assert not all(np.array_equal(before, variable.numpy())
                   for before, variable in zip(encoder_before, tagger.encoder.trainable_variables, strict=True))
    assert (tmp_path / "mlm" / "checkpoint").is_file()  # the last step's checkpoint, to resume from


def test_an_interrupted_pretraining_resumes_to_the_same_encoder(tmp_path, monkeypatch) -> None:
    """30 steps straight, against 15 steps, SIGTERM (a checkpoint, then TrainingStopped) and a new run from
    that checkpoint on a freshly built model: the same encoder at the end."""
    from albert_ner import pretraining
    from albert_ner.errors import TrainingStopped

    sentences = read_data_file(SAMPLE / "train.txt")[0][:120]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    label_map = LabelMap(sorted({e.type for s in sentences for e in s.entities}), scheme="bioes")
    hp = Hyperparameters(mlm_steps=30, batch_size=16, max_seq_length=64, learning_rate=2e-3, log_every_steps=10,
                         checkpoint_every_steps=0)

    def pretrained(directory, stop_signal) -> list[np.ndarray]:
        tf.keras.utils.set_random_seed(0)
        tagger = AlbertTagger(sized_config("tiny", len(vocab), 1), len(label_map), cls_id=vocab.cls_id,
                              sep_id=vocab.sep_id, pad_id=vocab.pad_id, lstm_units=8,
                              allowed=label_map.allowed_transitions())
        build_model(tagger, vocab.pad_id)
        try:
            pretrain_encoder(tagger, sentences, hp, CharTokenizer(vocab), label_map, tf.distribute.get_strategy(),
                             "float32", directory, True, False, stop_signal, TrainingHistory())
        finally:
            stop_signal.restore()
        return tagger.encoder.get_weights()

    straight = pretrained(tmp_path / "straight", StopSignal())
    stop = StopSignal()

    class StoppedAfter15(pretraining.TrainStep):
        calls = 0

        def __call__(self, *arguments, **keywords):
            StoppedAfter15.calls += 1
            if StoppedAfter15.calls == 15:
                stop.received = "SIGTERM"
            return super().__call__(*arguments, **keywords)

    with monkeypatch.context() as patch:
        patch.setattr(pretraining, "TrainStep", StoppedAfter15)
        with pytest.raises(TrainingStopped, match="at masked-language-model step 15"):
            pretrained(tmp_path / "interrupted", stop)
    resumed = pretrained(tmp_path / "interrupted", StopSignal())
    for expected, found in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7)


def test_fine_tuning_starts_from_the_pretrained_encoder(opt_ml: OptMl, monkeypatch, caplog) -> None:
    seen: dict[str, list[np.ndarray]] = {}
    real_pretrain, real_loop = training.pretrain_encoder, training.run_loop

    def pretrain(tagger, *arguments, **keywords):
        seen["before"] = [w.copy() for w in tagger.encoder.get_weights()]
        result = real_pretrain(tagger, *arguments, **keywords)
        seen["pretrained"] = [w.copy() for w in tagger.encoder.get_weights()]
        return result

    def loop(job, *arguments, **keywords):
        seen.setdefault("fine-tuning starts", [w.copy() for w in job.model.encoder.get_weights()])
        return real_loop(job, *arguments, **keywords)

    monkeypatch.setattr(training, "pretrain_encoder", pretrain)
    monkeypatch.setattr(training, "run_loop", loop)
    opt_ml.add_channel("training", SAMPLE / "train.txt")
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    opt_ml.add_channel("unlabelled", contents={"raw.txt": "张三在北京工作。\n李四去了上海。\n"})
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(opt_ml.base)})
    hp = Hyperparameters.from_strings({**TINY_HYPERPARAMETERS, "mlm_steps": "30", "max_steps": "5"})
    caplog.set_level(logging.INFO, logger="albert_ner.training")
    training.train(hp, env)

    assert "masked-language-model pretraining: 30 steps on" in caplog.text
    assert not all(np.array_equal(a, b) for a, b in zip(seen["before"], seen["pretrained"], strict=True))
    for pretrained, starting in zip(seen["pretrained"], seen["fine-tuning starts"], strict=True):
        np.testing.assert_array_equal(starting, pretrained)

    # Resumed from its fine-tuning checkpoints, the job does not pretrain again (they hold the encoder).
    seen.clear()
    caplog.clear()
    training.train(hp, env)
    assert "pretrained" not in seen
    assert "masked-language-model pretraining: skipped, the job resumes from its fine-tuning checkpoint" in caplog.text
