"""scripts/job_phases.py: the main job's per-phase wall times, split from a real `train` run's log."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
from job_phases import LINE, split_train_log  # noqa: E402

SCRIPT = REPO / "scripts" / "job_phases.py"


def _log_span_and_elapsed(log: Path) -> tuple[float, float]:
    """Seconds from the log's first to last timestamp, and the program's own 'training finished in' figure."""
    lines = log.read_text(encoding="utf-8")
    stamps = [datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
              for match in map(LINE.match, lines.splitlines()) if match]
    elapsed = re.search(r"training finished in ([0-9.]+) s", lines)
    assert elapsed, lines[-2000:]
    return (stamps[-1] - stamps[0]).total_seconds(), float(elapsed[1])


def test_phases_add_up_and_agree_with_the_programs_own_timings(trained_job) -> None:
    opt_ml, _ = trained_job
    log = opt_ml.output_data_dir / "training.log"
    span, elapsed = _log_span_and_elapsed(log)
    train = span + 3.0  # the program ran longer than it logged: start-up before its first line, exit after
    phases = split_train_log(log, install=40.0, fetch=2.0, train=train)

    assert phases.data == pytest.approx(2.0 + phases.train_data)
    assert phases.train_data + phases.training + phases.evaluation == pytest.approx(train)
    assert phases.total == pytest.approx(40.0 + 2.0 + train)
    assert phases.train_data > 0 and phases.training > 0 and phases.evaluation > 0
    # Writing the model happens inside the evaluation phase; the program times it on its own clock.
    assert 0 < phases.model_writing <= phases.evaluation + 0.01
    # train()'s own elapsed time covers the data and evaluation phases and the loop.
    assert phases.train_data + phases.evaluation < elapsed + 0.01 < phases.training + phases.train_data \
        + phases.evaluation + 0.01


def test_the_script_prints_every_phase(trained_job) -> None:
    opt_ml, _ = trained_job
    log = opt_ml.output_data_dir / "training.log"
    span, _ = _log_span_and_elapsed(log)
    result = subprocess.run([sys.executable, str(SCRIPT), str(log), "--install", "41", "--fetch", "2",
                             "--train", f"{span + 3:.1f}"], capture_output=True, text=True, check=True)
    rows = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()[1:]}
    assert list(rows) == ["install", "data", "training", "evaluation", "total"]
    assert rows["install"] == 41
    assert rows["total"] == pytest.approx(41 + 2 + span + 3, abs=1)
    assert "writing the model" in result.stdout


def test_a_log_cut_short_is_refused_naming_the_file_and_the_missing_line(trained_job, tmp_path: Path) -> None:
    opt_ml, _ = trained_job
    lines = (opt_ml.output_data_dir / "training.log").read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "training.log"
    cut.write_text("".join(line for line in lines if "training finished in" not in line), encoding="utf-8")
    result = subprocess.run([sys.executable, str(SCRIPT), str(cut), "--install", "1", "--fetch", "1",
                             "--train", "600"], capture_output=True, text=True)
    assert result.returncode == 1
    assert str(cut) in result.stderr and "'training finished in'" in result.stderr


def test_a_train_time_shorter_than_the_log_is_refused(trained_job) -> None:
    opt_ml, _ = trained_job
    with pytest.raises(ValueError, match="spans more than the 0 s"):
        split_train_log(opt_ml.output_data_dir / "training.log", install=1.0, fetch=1.0, train=0.0)
