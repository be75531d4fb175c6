"""The training history: recorded points, phase laps, and the curves a resumed job takes over."""

from __future__ import annotations

import json
from pathlib import Path

from albert_ner.training_history import HISTORY_FILE, TrainingHistory


def test_a_resumed_history_keeps_the_points_up_to_the_checkpoint_and_marks_each_resume(tmp_path: Path) -> None:
    first = TrainingHistory()
    for step in (10, 20, 30, 40):
        first.record_log(step, 1, 1.0 / step, 1e-3, 100.0)
    first.record_evaluation(20, 1, 0.5, 0.5, 0.5, 1.0)
    first.record_evaluation(40, 1, 0.6, 0.6, 0.6, 1.0)
    first.save(tmp_path)  # saved before the checkpoint at step 40, which then failed to be written

    second = TrainingHistory()
    second.resume(tmp_path, 20)  # the newest readable checkpoint was step 20
    assert [point.step for point in second.log_points] == [10, 20]
    assert [point.step for point in second.evaluations] == [20] and second.resumed_at == [20]
    second.record_log(30, 1, 0.02, 1e-3, 90.0)
    second.save(tmp_path)

    third = TrainingHistory()
    third.resume(tmp_path, 30)
    assert [point.step for point in third.log_points] == [10, 20, 30] and third.resumed_at == [20, 30]
    assert third.log_points[-1].train_loss == 0.02  # the resumed run's point, not the stopped run's
    saved = json.loads((tmp_path / HISTORY_FILE).read_text(encoding="utf-8"))
    assert set(saved) == {"log_points", "evaluations", "resumed_at"}


def test_an_unreadable_history_leaves_the_curves_to_this_run(tmp_path: Path, caplog) -> None:
    (tmp_path / HISTORY_FILE).write_text("{not json", encoding="utf-8")
    history = TrainingHistory()
    history.resume(tmp_path, 30)
    assert history.log_points == [] and history.resumed_at == [30]
    assert "no training history before step 30" in caplog.text


def test_laps_add_up_to_the_time_between_them() -> None:
    history = TrainingHistory()
    history.lap("reading the data")
    history.lap("training")
    history.lap("training")
    assert list(history.phases) == ["reading the data", "training"]
    assert all(seconds >= 0 for seconds in history.phases.values())
