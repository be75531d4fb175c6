"""Self-training on the `unlabelled` channel: the pseudo-labels are the previous round's best model's, kept
only where every entity reaches the threshold, weighted by score; rounds stop when validation F1 does not
rise; a rerun of a finished job replays the rounds to the same weights; the channel's errors name file and
line."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from albert_ner.confidence import ScoredPrediction
from albert_ner.data import formatted, read_data_file
from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import DataError, HyperparameterError
from albert_ner.hyperparameters import Hyperparameters
from albert_ner.self_training import pseudo_labelled
from albert_ner.sentences import Entity, Sentence
from albert_ner.training import prepare_data
from albert_ner.training_state import BEST_WEIGHTS_FILE, weights_digest
from albert_ner.unlabelled import read_unlabelled
from conftest import SAMPLE, TINY_HYPERPARAMETERS, OptMl


class KnownScores:
    """A tagger whose entities and scores are set per text."""

    def __init__(self, answers: dict[str, list[tuple[Entity, float]]], sentence_scores: dict[str, float]):
        self.answers, self.sentence_scores = answers, sentence_scores
        self.asked: list[str] = []

    def predict(self, token_sequences):
        predictions = []
        for tokens in token_sequences:
            text = "".join(tokens)
            self.asked.append(text)
            answer = self.answers.get(text, [])
            predictions.append(ScoredPrediction([], [entity for entity, _ in answer], [score for _, score in answer],
                                                self.sentence_scores.get(text, 0.5)))
        return predictions


def test_pseudo_labels_keep_only_sentences_whose_every_entity_reaches_the_threshold(caplog) -> None:
    sentences = [Sentence(tuple(text), (), f"raw.txt:{line}")
                 for line, text in enumerate(["张三在北京。", "李四去了上海。", "今天下雨。", "王五住在南京。",
                                              "赵六来了。"], 1)]
    tagger = KnownScores({
        "张三在北京。": [(Entity(0, 2, "PER"), 0.95), (Entity(3, 5, "LOC"), 0.9)],
        "李四去了上海。": [(Entity(0, 2, "PER"), 0.99), (Entity(4, 6, "LOC"), 0.89)],  # one entity below
        "王五住在南京。": [(Entity(0, 2, "PER"), 0.9)],  # exactly the threshold
    }, {"今天下雨。": 0.96, "赵六来了。": 0.6})  # no entity found: sure of that, and not (a name missed?)
    caplog.set_level(logging.INFO, logger="albert_ner.training")
    kept = pseudo_labelled(tagger, sentences, threshold=0.9, weight=2.0, round_number=3)

    assert tagger.asked == ["张三在北京。", "李四去了上海。", "今天下雨。", "王五住在南京。", "赵六来了。"]
    assert ["".join(s.tokens) for s in kept.sentences] == ["张三在北京。", "今天下雨。", "王五住在南京。"]
    assert kept.sentences[0].entities == (Entity(0, 2, "PER"), Entity(3, 5, "LOC"))
    assert kept.sentences[0].source == "raw.txt:1" and kept.sentences[1].entities == ()
    assert kept.weights == pytest.approx([2.0 * 0.9, 2.0 * 0.96, 2.0 * 0.9])
    assert ("self-training round 3: 3 of 5 unlabelled sentences kept (every entity scored >= 0.9), with 3 "
            "entities") in caplog.text


def test_the_unlabelled_channel_reads_text_and_json_lines_and_names_bad_lines(tmp_path) -> None:
    channel = tmp_path / "unlabelled"
    channel.mkdir()
    (channel / "a.txt").write_text("张三在北京。\n\n  \n 李四去了上海。 \r\n", encoding="utf-8")
    (channel / "b.jsonl").write_text('{"text": "王五住在南京。"}\n"今天下雨。"\n', encoding="utf-8")
    sentences = read_unlabelled(channel)
    assert [("".join(s.tokens), s.source) for s in sentences] == [
        ("张三在北京。", f"{channel / 'a.txt'}:1"), ("李四去了上海。", f"{channel / 'a.txt'}:4"),
        ("王五住在南京。", f"{channel / 'b.jsonl'}:1"), ("今天下雨。", f"{channel / 'b.jsonl'}:2")]
    assert all(s.entities == () for s in sentences)

    (channel / "b.jsonl").write_text('{"text": "王五"}\n{"id": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{channel / 'b.jsonl'}:2: an object needs a \"text\""):
        read_unlabelled(channel)
    (channel / "b.jsonl").write_bytes('王五\n'.encode() + b"\xff\xfe\n")
    with pytest.raises(DataError, match=rf"^{channel / 'b.jsonl'}:2: not UTF-8"):
        read_unlabelled(channel)
    (channel / "b.jsonl").unlink()
    (channel / "a.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no text: all 2 line\(s\) of the channel are blank"):
        read_unlabelled(channel)


def test_self_training_needs_the_channel_and_the_channel_needs_rounds(opt_ml: OptMl, caplog) -> None:
    opt_ml.add_channel("training", SAMPLE / "train.txt")
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(opt_ml.base)})
    with pytest.raises(HyperparameterError, match="self_training_rounds=2: self-training tags the text of an "
                                                  "`unlabelled` channel, and there is none"):
        prepare_data(Hyperparameters(self_training_rounds=2), env)
    opt_ml.add_channel("unlabelled", contents={"raw.txt": "张三在北京。\n"})
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(opt_ml.base)})
    caplog.set_level(logging.INFO, logger="albert_ner.training")
    assert prepare_data(Hyperparameters(), env).unlabelled == []
    assert "channel unlabelled: not read, as self_training_rounds and mlm_steps are 0" in caplog.text
    # Text that gold, validation or test already hold is not tagged again.
    gold = "".join(read_data_file(SAMPLE / "train.txt")[0][0].tokens)
    opt_ml.add_channel("unlabelled", contents={"raw.txt": f"张三在北京。\n{gold}\n"})
    data = prepare_data(Hyperparameters(self_training_rounds=1), env)
    assert ["".join(s.tokens) for s in data.unlabelled] == ["张三在北京。"]
    assert all(character in data.tokenizer.vocab for character in "张三")


def test_rounds_tag_with_the_previous_rounds_best_model_and_a_rerun_replays_them(opt_ml: OptMl) -> None:
    gold, _ = read_data_file(SAMPLE / "train.txt")
    # Patience 1: rounds stop early, and a rerun must find them stopped rather than train them on.
    opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "self_training_rounds": "2", "early_stopping_patience": "1",
                                  "self_training_threshold": "0.5", "epochs": "3", "eval_every_steps": "10"})
    opt_ml.add_channel("training", contents={"train.txt": "".join(formatted(s, "conll", "bio") for s in gold[:300])})
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    opt_ml.add_channel("unlabelled", contents={"raw.txt": "".join("".join(s.tokens) + "\n" for s in gold[300:])})
    first = opt_ml.run_train()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    log = first.stdout + first.stderr

    assert re.search(rf"channel unlabelled: \d+ of {len(gold) - 300} sentences kept: \d+ left out for the gold", log)
    tagged = dict(re.findall(r"self-training round (\d): tagging with the best model of the round before "
                             r"\(validation F1 [\d.]+, weights sha256 (\w+)\)", log))
    checkpoints = opt_ml.base / "checkpoints"
    assert tagged["1"] == _digest(checkpoints / BEST_WEIGHTS_FILE)  # round 0's best model tagged round 1
    assert re.search(r"self-training round 1: \d+ of \d+ unlabelled sentences kept \(every entity scored >= 0.5\)",
                     log)
    (outcome,) = re.findall(r"self-training round 1: best validation F1 ([\d.]+) against ([\d.]+) before it(.*)", log)
    if float(outcome[0]) > float(outcome[1]):  # round 1's best model tags round 2
        assert outcome[2] == "" and tagged["2"] == _digest(checkpoints / "self-training-1" / BEST_WEIGHTS_FILE)
    else:  # no better: self-training stops there
        assert outcome[2].startswith(": no better") and "2" not in tagged
    report = (opt_ml.output_data_dir / "report.html").read_text(encoding="utf-8")
    assert "round 1: " in report and "pseudo-labelled sentences, validation F1" in report

    # The same job again, its checkpoints complete: each round is replayed from them, to the same model.
    again = opt_ml.run_train()
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    replayed = again.stdout + again.stderr
    assert _final_weights(replayed) == _final_weights(log)
    # The same pseudo-labels, from the same models.
    assert _tagging(replayed) == _tagging(log) and len(_tagging(log)) >= 2
    assert "saved checkpoint" not in replayed  # nothing trained again


def _tagging(log: str) -> list[str]:
    return re.findall(r"self-training round \d: (?:tagging with .*|\d+ of \d+ unlabelled sentences kept.*)", log)


def _digest(path) -> str:
    with np.load(path) as archive:
        return weights_digest([archive[f"arr_{index}"] for index in range(len(archive.files))])


def _final_weights(log: str) -> str:
    return re.findall(r"training finished in .* weights sha256 (\w+)", log)[-1]


def test_a_job_stopped_inside_a_round_resumes_to_the_same_model(tmp_path) -> None:
    """SIGTERM ten steps into self-training round 1: the rerun replays round 0 from its checkpoint, tags
    the same text with the same model, resumes round 1 from its own checkpoint, and ends where an
    uninterrupted job ends."""
    import os
    import signal
    import subprocess
    import sys

    from albert_ner.prediction import Predictor
    from conftest import TRAIN
    from test_resume import RESUMED_WEIGHTS_TOLERANCE

    gold, _ = read_data_file(SAMPLE / "train.txt")

    def job(name: str) -> OptMl:
        opt_ml = OptMl(tmp_path / name)
        opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "self_training_rounds": "1", "epochs": "2",
                                      "self_training_threshold": "0.5", "early_stopping_patience": "0",
                                      "checkpoint_every_steps": "5", "log_every_steps": "5"})
        conll = "".join(formatted(sentence, "conll", "bio") for sentence in gold[:200])
        opt_ml.add_channel("training", contents={"train.txt": conll})
        opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
        opt_ml.add_channel("unlabelled", contents={"raw.txt": "".join("".join(s.tokens) + "\n" for s in gold[300:])})
        return opt_ml

    straight = job("straight")
    assert straight.run_train().returncode == 0
    interrupted = job("interrupted")
    process = subprocess.Popen([sys.executable, str(TRAIN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=dict(os.environ, SAGEMAKER_BASE_DIR=str(interrupted.base),
                                                   PYTHONUNBUFFERED="1"))
    assert process.stdout is not None
    in_round = False
    lines = []
    for line in process.stdout:
        lines.append(line)
        in_round = in_round or "self-training round 1: training on" in line
        if in_round and re.search(r"epoch=1 step=10/", line):
            process.send_signal(signal.SIGTERM)
            break
    lines.extend(process.stdout)
    assert process.wait(timeout=300) == 143, "".join(lines)[-3000:]
    assert (interrupted.base / "checkpoints" / "self-training-1" / "checkpoint").is_file()
    resumed = interrupted.run_train()
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert re.search(r"resuming from checkpoint .*self-training-1/ckpt-1\d", resumed.stdout + resumed.stderr)
    expected = Predictor.load(straight.model_dir).model.get_weights()
    found = Predictor.load(interrupted.model_dir).model.get_weights()
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(found, expected, strict=True))
    assert difference < RESUMED_WEIGHTS_TOLERANCE, difference
