"""Command lines: the SageMaker ``train`` program and ``albert-ner train|evaluate|predict``.

``train`` stays thin, as in the SageMaker "bring your own" examples: find the inputs, parse the
hyperparameters, call :func:`albert_ner.training.train`, and on any error write ``output/failure`` (the
reason in plain words first, the traceback after) and exit non-zero. Nothing is swallowed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import AlbertNerError, HyperparameterError, TrainingStopped

log = logging.getLogger("albert_ner")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# 128 + SIGTERM, the shell's status for a process ended by SIGTERM: stopped on request, not failed.
STOPPED_EXIT_STATUS = 143


def run_training(argv: Sequence[str] = ()) -> int:
    """The ``train`` entrypoint: SageMaker layout in, model and reports out, exit status back.

    ``argv`` may carry hyperparameters as ``--name value`` pairs, which is how the AWS framework
    containers (script mode) pass them; they override ``hyperparameters.json``.
    """
    env = TrainingEnvironment.from_environ()
    log_file = _configure_logging(env.output_data_dir)
    try:
        from albert_ner.hyperparameters import Hyperparameters

        raw = env.read_hyperparameters()
        raw.update(_pairs(argv))
        hyperparameters = Hyperparameters.from_strings(raw)

        from albert_ner.training import train

        train(hyperparameters, env)
        return 0
    except TrainingStopped as stopped:
        log.warning("%s", stopped)
        return STOPPED_EXIT_STATUS
    except BaseException as error:  # noqa: BLE001 - every failure must reach the failure file
        if isinstance(error, SystemExit) and not error.code:
            return 0
        _write_failure(env.failure_path, error)
        log.error("training failed: %s", _reason(error))
        return 1
    finally:
        _finish_log(log_file)


def _pairs(argv: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    items = list(argv)
    while items:
        key = items.pop(0)
        if not key.startswith("--"):
            raise HyperparameterError(f"command-line argument {key!r}: expected --name value pairs")
        name, _, value = key[2:].partition("=")
        if not _:
            if not items:
                raise HyperparameterError(f"command-line argument {key!r}: missing its value")
            value = items.pop(0)
        pairs[name.replace("-", "_")] = value
    return pairs


def _reason(error: BaseException) -> str:
    if isinstance(error, AlbertNerError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"{type(error).__name__}: {error}"


def _write_failure(path: Path, error: BaseException) -> None:
    """SageMaker shows the first 1,024 characters as FailureReason: the reason comes first."""
    from albert_ner.files import write_text_atomically

    details = "".join(traceback.format_exception(error))
    write_text_atomically(path, f"{_reason(error)}\n\n{details}")


def _configure_logging(output_data_dir: Path) -> Path | None:
    """Log to stdout (SageMaker's metric regexes read it) and to a copy in ``output/data``.

    The copy is written as ``training.log.partial`` and renamed when the job ends, so that what
    SageMaker packs into output.tar.gz is either the complete log or clearly marked as cut short.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    root.handlers = [console]
    # absl logs one INFO line per checkpoint shard ("Sharding callback duration"): noise in a job log.
    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        output_data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log.warning("cannot write the log copy to %s: %s", output_data_dir, error)
        return None
    partial = output_data_dir / "training.log.partial"
    handler = logging.FileHandler(partial, encoding="utf-8")
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return partial


def _finish_log(partial: Path | None) -> None:
    if partial is None:
        return
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logging.getLogger().removeHandler(handler)
    os.replace(partial, partial.with_suffix(""))


# ------------------------------------------------------------------------ albert-ner command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="albert-ner", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train as SageMaker does, on a directory laid out like /opt/ml")
    train.add_argument("--base-dir", help="the /opt/ml-style root (default: $SAGEMAKER_BASE_DIR or /opt/ml)")
    train.add_argument("hyperparameters", nargs=argparse.REMAINDER,
                       help="--name value pairs overriding input/config/hyperparameters.json")

    evaluate = commands.add_parser("evaluate", help="score a trained model on labelled files")
    evaluate.add_argument("--model-dir", required=True)
    evaluate.add_argument("files", nargs="+", help="CoNLL or JSON Lines files, or directories of them")
    evaluate.add_argument("--output", help="write the report as JSON here")

    predict = commands.add_parser("predict", help="tag text, one JSON line of entities per input line")
    predict.add_argument("--model-dir", required=True)
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a sentence to tag (repeatable)")
    source.add_argument("--input", help="a text file (one sentence per line) or JSON Lines ({\"text\": ...})")
    predict.add_argument("--output", help="JSON Lines output file (default: stdout)")
    predict.add_argument("--batch-size", type=int, default=128)

    args = parser.parse_args(argv)
    if args.command == "train":
        if args.base_dir:
            os.environ["SAGEMAKER_BASE_DIR"] = args.base_dir
        return run_training(args.hyperparameters)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        return _predict(args)
    except AlbertNerError as error:
        print(f"albert-ner {args.command}: {error}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace) -> int:
    from albert_ner.data import read_channel, read_data_file
    from albert_ner.prediction import Predictor
    from albert_ner.training import evaluate

    predictor = Predictor.load(args.model_dir)
    sentences = []
    for name in args.files:
        path = Path(name)
        sentences += (read_channel(path) if path.is_dir() else read_data_file(path))[0]
    report = evaluate(predictor, sentences)
    print(report.table())
    if args.output:
        from albert_ner.files import write_text_atomically

        write_text_atomically(Path(args.output), json.dumps(report.to_dict(), indent=2) + "\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from albert_ner.prediction import Predictor, stream_predictions

    predictor = Predictor.load(args.model_dir, batch_size=args.batch_size)
    texts = args.text if args.text else None
    output = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        stream_predictions(predictor, texts if texts is not None else Path(args.input), output)
    finally:
        if output is not sys.stdout:
            output.close()
    return 0
