"""The `teacher` channel: another system's spans, trained on beside the gold data with a weight. Gold wins
on a sentence both label; a teacher's label of a validation or test sentence is never trained on; its
types must be the model's (or renamed); its per-entity scores lower a sentence's weight; and the loss
weighs each example as told."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from albert_ner.batching import EncodedExamples, training_batches
from albert_ner.data import read_data_file
from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import DataError, HyperparameterError
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.optimization import OptimizerSettings, TrainStep, make_loss_scale, make_optimizers
from albert_ner.prediction import entity_records
from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab
from albert_ner.training import prepare_data
from conftest import OptMl

GOLD = [("张三在北京工作。", [[0, 2, "PER"], [3, 5, "LOC"]]), ("李四去了上海。", [[0, 2, "PER"], [4, 6, "LOC"]])]
VALIDATION = [("王五在南京。", [[0, 2, "PER"], [3, 5, "LOC"]])]


def _lines(records: list) -> str:
    return "".join(json.dumps({"text": text, "entities": entities}, ensure_ascii=False) + "\n"
                   for text, entities in records)


def _job(opt_ml: OptMl, teacher: list | None) -> TrainingEnvironment:
    opt_ml.add_channel("training", contents={"train.jsonl": _lines(GOLD)})
    opt_ml.add_channel("validation", contents={"validation.jsonl": _lines(VALIDATION)})
    if teacher is not None:
        opt_ml.add_channel("teacher", contents={"teacher.jsonl": _lines(teacher)})
    return TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(opt_ml.base)})


def test_gold_wins_scored_texts_stay_out_and_scores_lower_the_weight(opt_ml: OptMl, caplog) -> None:
    env = _job(opt_ml, [
        ("张三在北京工作。", [[0, 3, "PER"]]),  # gold labels this text: the teacher's labels are not used
        ("王五在南京。", [[0, 2, "PER"]]),  # a validation sentence: never trained on
        ("赵六住在杭州。", [[0, 2, "PER", 0.9], [4, 6, "LOC", 0.6]]),
        ("钱七到了广州。", [[0, 2, "PER"], [4, 6, "LOC"]]),
        ("今天下雨。", []),  # the teacher found nothing: a sentence with no entities, trained on as such
    ])
    caplog.set_level(logging.INFO, logger="albert_ner.training")
    data = prepare_data(Hyperparameters(teacher_weight=2.0), env)

    training = data.training_sentences()
    sentences, weights = training.sentences, training.weights
    assert ["".join(s.tokens) for s in sentences] == ["张三在北京工作。", "李四去了上海。", "赵六住在杭州。",
                                                    "钱七到了广州。", "今天下雨。"]
    assert weights == pytest.approx([1.0, 1.0, 2.0 * 0.6, 2.0, 2.0])
    assert [tuple(e) for e in sentences[0].entities] == [(0, 2, "PER"), (3, 5, "LOC")]  # gold's, not the teacher's
    assert [tuple(e) for e in sentences[2].entities] == [(0, 2, "PER"), (4, 6, "LOC")]
    assert ("channel teacher: 3 of 5 sentences kept: 1 left out for the gold labels of the same text, 1 left out "
            "because validation or test holds the same text") in caplog.text
    assert "channel teacher: weight 2 times the lowest entity score: mean weight 1.733" in caplog.text
    # The vocabulary has the text trained on, the teacher's included, and none of the text scored on.
    assert all(character in data.tokenizer.vocab for character in "赵杭州钱广")
    assert not any(character in data.tokenizer.vocab for character in "王五南")


def test_a_teacher_type_the_model_lacks_is_named_unless_renamed(opt_ml: OptMl) -> None:
    env = _job(opt_ml, [("赵六住在杭州。", [[0, 2, "PER"]]), ("钱七到了广州。", [[0, 2, "PERSON"], [4, 6, "GPE"]])])
    teacher_file = opt_ml.base / "input" / "data" / "teacher" / "teacher.jsonl"
    with pytest.raises(DataError, match=rf"^{teacher_file}:2: channel teacher: entity type 'PERSON' is not among "
                                        r"the model's entity types \(LOC, PER\): rename it with the hyperparameter "
                                        r"teacher_type_mapping=PERSON=TYPE$"):
        prepare_data(Hyperparameters(), env)
    with pytest.raises(DataError, match=r"entity type 'PEOPLE' \(renamed from PERSON by teacher_type_mapping\)"):
        prepare_data(Hyperparameters(teacher_type_mapping="PERSON=PEOPLE,GPE=LOC"), env)
    data = prepare_data(Hyperparameters(teacher_type_mapping="PERSON=PER, GPE=LOC"), env)
    assert [tuple(e) for e in data.teacher.sentences[1].entities] == [(0, 2, "PER"), (4, 6, "LOC")]
    with pytest.raises(HyperparameterError, match="hyperparameter teacher_type_mapping='PERSON': .*expected"):
        prepare_data(Hyperparameters(teacher_type_mapping="PERSON"), env)


def test_a_type_mapping_without_a_teacher_channel_is_refused(opt_ml: OptMl) -> None:
    env = _job(opt_ml, None)
    with pytest.raises(HyperparameterError, match="teacher_type_mapping='PERSON=PER' without a `teacher` channel"):
        prepare_data(Hyperparameters(teacher_type_mapping="PERSON=PER"), env)
    assert prepare_data(Hyperparameters(), env).training_sentences().weights == [1.0, 1.0]


def test_entity_scores_are_read_from_json_lines_and_checked(tmp_path) -> None:
    path = tmp_path / "teacher.jsonl"
    path.write_text('{"text": "张三在北京。", "entities": [[0, 2, "PER", 0.25], {"start": 3, "end": 5, "type": "LOC", '
                    '"score": 1}]}\n{"text": "李四。", "entities": [[0, 2, "PER"]]}\n', encoding="utf-8")
    first, second = read_data_file(path)[0]
    assert first.entity_scores == (0.25, 1.0) and second.entity_scores is None
    # `albert-ner predict`'s lines (entity_records) read as they are, scores and all.
    text = "张三在北京。"
    predicted = entity_records(tuple(text), [Entity(0, 2, "PER"), Entity(3, 5, "LOC")], [0.75, 0.5])
    path.write_text(json.dumps({"text": text, "entities": predicted}, ensure_ascii=False) + "\n", encoding="utf-8")
    (read,) = read_data_file(path)[0]
    assert read.entities == (Entity(0, 2, "PER"), Entity(3, 5, "LOC")) and read.entity_scores == (0.75, 0.5)
    for score in ("1.5", '"high"', "true", "-0.1", "NaN"):
        path.write_text('{"text": "李四。", "entities": []}\n'
                        f'{{"text": "张三。", "entities": [[0, 2, "PER", {score}]]}}\n', encoding="utf-8")
        with pytest.raises(DataError, match=rf"^{path}:2: entities\[0\] .*: score .* is not a number from 0 to 1$"):
            read_data_file(path)


def test_the_loss_weighs_each_example_as_told() -> None:
    """The step's loss is sum(weight x the example's negative log-likelihood) / batch size, and an example
    of weight 0 moves nothing."""
    tf.keras.utils.set_random_seed(0)
    labels = LabelMap(["PER"], scheme="bio")
    config = AlbertConfig(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=20,
                          family="brightmart")

    def model_and_step() -> tuple[AlbertTagger, TrainStep]:
        tf.keras.utils.set_random_seed(0)
        model = AlbertTagger(config, len(labels), cls_id=2, sep_id=3, pad_id=0, lstm_units=4, dropout=0.0,
                             allowed=labels.allowed_transitions())
        build_model(model, pad_id=0)
        optimizers = make_optimizers(model, OptimizerSettings.of(Hyperparameters(warmup_proportion=0.0), False), 10)
        return model, TrainStep(model, optimizers, make_loss_scale("float32"), tf.distribute.get_strategy(),
                                clip_norm=1e9, precision="float32")

    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 30, (3, 6)).astype(np.int32)
    tag_ids = rng.choice([labels.tags.index("O"), labels.tags.index("B-PER")], (3, 6)).astype(np.int32)
    lengths, lexicon = np.array([6, 4, 5], np.int32), np.zeros((3, 6, 0), np.uint8)
    weights = np.array([1.0, 0.0, 2.5], np.float32)

    model, step = model_and_step()
    per_example = model.per_example_loss(model(token_ids, lengths, lexicon, training=True), tag_ids, lengths).numpy()
    loss = float(step(token_ids, tag_ids, lengths, lexicon, weights))
    assert loss == pytest.approx(float((weights * per_example).sum() / 3), rel=1e-5)
    weighted = [variable.numpy() for variable in model.trainable_variables]

    # The same step without the weight-0 example (the others' weights scaled to the smaller batch) has the
    # same loss and gradients, so it lands on the same weights.
    model, step = model_and_step()
    keep = [0, 2]
    smaller = float(step(token_ids[keep], tag_ids[keep], lengths[keep], lexicon[keep], weights[keep] * 2 / 3))
    assert smaller == pytest.approx(loss, rel=1e-5)
    for after, expected in zip([variable.numpy() for variable in model.trainable_variables], weighted, strict=True):
        np.testing.assert_allclose(after, expected, rtol=1e-4, atol=1e-6)


def test_each_window_carries_its_sentences_weight_through_every_batch() -> None:
    """A long sentence is cut into windows; every window, in whatever batch and row the plan puts it,
    weighs what its sentence does."""
    sentences = [Sentence(tuple("甲乙"), (Entity(0, 1, "PER"),)), Sentence(tuple("子丑寅卯辰巳午未申酉"), ()),
                 Sentence(tuple("天地"), ())]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    tokenizer = CharTokenizer(vocab)
    examples = EncodedExamples(sentences, 4, tokenizer, LabelMap(["PER"], scheme="bio"), weights=[1.0, 0.5, 2.0])
    assert len(examples) == 5  # 1 + 3 windows + 1
    weight_of = {token: weight for sentence, weight in zip(sentences, [1.0, 0.5, 2.0], strict=True)
                 for token in tokenizer.encode(sentence.tokens)}
    batches = training_batches(examples, 2, seed=3, group_by_length=True, token_dropout=0.0, unk_id=vocab.unk_id,
                               epoch=0, next_batch=0)
    rows = 0
    while True:
        batch = next(batches)
        assert batch.weights.shape == (len(batch.lengths),)
        for tokens, weight in zip(batch.token_ids, batch.weights, strict=True):
            assert weight == weight_of[int(tokens[0])]
            rows += 1
        if batch.last_in_epoch:
            break
    assert rows == 5
