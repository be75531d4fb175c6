"""Command lines: the SageMaker ``train`` program and ``albert-ner``, the one front door to everything else
(``train``, ``evaluate``, ``predict``, ``serve``, ``convert``, ``download``, ``select``, ``export``,
``calibrate``).

Heavy modules (TensorFlow and everything that imports it) are imported inside the commands that need
them, so ``albert-ner --help`` and a failing ``train`` answer quickly.

``train`` stays thin, as in the SageMaker "bring your own" examples: find the inputs, parse the
hyperparameters, call :func:`albert_ner.training.train`, and on any error write ``output/failure`` (the
reason in plain words first, the traceback after) and exit non-zero. Nothing is swallowed.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from albert_ner.environment import TrainingEnvironment, failure_path, output_data_dir
from albert_ner.errors import AlbertNerError, DataError, HyperparameterError, TrainingStopped
from albert_ner.files import read_text, replace_atomically, replacing, write_text_atomically
from albert_ner.redaction import RedactingFormatter, redact_text
from albert_ner.runtimes.choice import QUANTIZATIONS, RUNTIME_VARIABLE, RUNTIMES, TENSORFLOW
from albert_ner.text_records import read_texts

if TYPE_CHECKING:
    from albert_ner.label_studio.config import LabellingInterface
    from albert_ner.labelling_tasks import TaskWriter
    from albert_ner.prediction import Predictor

log = logging.getLogger("albert_ner")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# 128 + SIGTERM, the shell's status for a process ended by SIGTERM: stopped on request, not failed.
STOPPED_EXIT_STATUS = 143
RUNTIME_HELP = (f"what runs the model: {', '.join(RUNTIMES)} (default: ${RUNTIME_VARIABLE}, else the fastest runtime "
                "the model directory holds whose agreement with TensorFlow held at export)")


def run_training(argv: Sequence[str] = (), base_dir: str | None = None) -> int:
    """The ``train`` entrypoint: SageMaker layout in, model and reports out, exit status back.

    ``argv`` may carry hyperparameters as ``--name value`` pairs, which is how the AWS framework
    containers (script mode) pass them; they override ``hyperparameters.json``. ``base_dir`` stands for
    ``SAGEMAKER_BASE_DIR`` (``albert-ner train --base-dir``), for this job only.
    """
    environ: Mapping[str, str] = os.environ if base_dir is None else {**os.environ, "SAGEMAKER_BASE_DIR": base_dir}
    log_file = _configure_logging(output_data_dir(environ))
    try:
        env = TrainingEnvironment.from_environ(environ)
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
        _write_failure(failure_path(environ), error)
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
    details = "".join(traceback.format_exception(error))
    write_text_atomically(path, redact_text(f"{_reason(error)}\n\n{details}"))


def _configure_logging(log_dir: Path) -> Path | None:
    """Log to stdout (SageMaker's metric regexes read it) and to a copy in ``output/data``.

    The copy is written as ``training.log.partial`` and renamed when the job ends, so that what
    SageMaker packs into output.tar.gz is either the complete log or clearly marked as cut short.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = RedactingFormatter(LOG_FORMAT)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    root.handlers = [console]
    # absl logs one INFO line per checkpoint shard ("Sharding callback duration"): noise in a job log.
    logging.getLogger("absl").setLevel(logging.WARNING)
    partial = log_dir / "training.log.partial"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(partial, encoding="utf-8")
    except OSError as error:
        log.warning("cannot write the log copy to %s: %s", log_dir, error)
        return None
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
    replace_atomically(partial, partial.with_suffix(""))


# ------------------------------------------------------------------------------ streaming text
def stream_predictions(predictor: Predictor, source: Iterable[str] | Path, output: TextIO,
                       chunk_size: int = 2048, tasks: TaskWriter | None = None) -> int:
    """Tag texts as they are read and write one JSON line of entities per text, in order (or each text to
    ``tasks``, as a labelling tool's task); returns the count."""
    from albert_ner.prediction import entity_records

    texts = read_texts(source) if isinstance(source, Path) else iter(source)
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(unit="sentence", dynamic_ncols=True)
    count = 0
    while chunk := list(itertools.islice(texts, chunk_size)):
        for text, prediction in zip(chunk, predictor.predict([list(text) for text in chunk]), strict=True):
            if tasks is not None:
                tasks.write(text, prediction)
                continue
            records = entity_records(text, prediction.entities, prediction.scores)
            output.write(json.dumps({"text": text, "entities": records}, ensure_ascii=False) + "\n")
        output.flush()
        count += len(chunk)
        if progress is not None:
            progress.update(len(chunk))
    if progress is not None:
        progress.close()
    return count


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
    evaluate.add_argument("--runtime", choices=RUNTIMES, help=RUNTIME_HELP)
    evaluate.add_argument("files", nargs="+", help="labelled files in any format train reads, or directories")
    evaluate.add_argument("--output", help="write the report as JSON here")
    evaluate.add_argument("--report", help="write the HTML report page (scores, error breakdown, worst sentences) here")
    evaluate.add_argument("--repair-tags", action="store_true",
                          help="as the repair_tags hyperparameter (MSRA's files need it)")

    predict = commands.add_parser("predict", help="tag text, one JSON line of entities per input line")
    predict.add_argument("--model-dir", required=True)
    predict.add_argument("--runtime", choices=RUNTIMES, help=RUNTIME_HELP)
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="a sentence to tag (repeatable)")
    source.add_argument("--input", help="a text file (one sentence per line) or JSON Lines ({\"text\": ...})")
    predict.add_argument("--output", help="output file (default: stdout)")
    predict.add_argument("--format", choices=("jsonl", "label-studio", "doccano"), default="jsonl",
                         help="jsonl: {\"text\", \"entities\"} per line (default); label-studio: a JSON list of tasks "
                              "with the entities as predictions, to import as pre-annotations; doccano: its JSONL "
                              "with \"label\" spans")
    predict.add_argument("--batch-size", type=int, default=128)

    serve = commands.add_parser("serve", help="serve a model directory over HTTP, as `docker run IMAGE serve` does: "
                                "SageMaker's /ping and /invocations, and Label Studio's ML backend")
    serve.add_argument("--model-dir", help="the model directory (default: $SM_MODEL_DIR, else /opt/ml/model)")
    serve.add_argument("--port", type=int, help="the port (default: $SAGEMAKER_BIND_TO_PORT, else 8080)")
    serve.add_argument("--host", help="the address to listen on (default: $ALBERT_NER_BIND_HOST, else 0.0.0.0)")

    convert = commands.add_parser("convert", help="write labelled input in any readable format as CoNLL or "
                                  "JSON Lines, to see what a job trains on")
    convert.add_argument("inputs", nargs="+", help="files or channel directories, in any format train reads")
    convert.add_argument("--to", choices=("conll", "jsonl"), default="conll", help="output format (default: conll)")
    convert.add_argument("--output", help="output file (default: stdout)")
    convert.add_argument("--tag-scheme", choices=("bio", "bioes"), default=None,
                         help="tag scheme of CoNLL output (default: the job's tag_scheme hyperparameter default)")
    for name in ("input_tag_scheme", "label_attribute", "overlapping_entities"):
        convert.add_argument(f"--{name.replace('_', '-')}", help=f"as the {name} hyperparameter")
    for name in ("repair_tags", "utf16_offsets"):
        convert.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=f"as the {name} hyperparameter")
    download = commands.add_parser("download", help="fetch a pretrained_model into a directory laid out like the "
                                   "`pretrained` channel (to upload to S3 once, for accounts without internet)")
    download.add_argument("name", help="what pretrained_model accepts: owner/name[@revision] on the Hugging Face "
                          "Hub, an albert_zh short name, or a directory")
    download.add_argument("--to", required=True, help="directory to create (must be absent or empty)")
    select = commands.add_parser("select", help="choose the sentences most worth labelling next, as a Ground "
                                                "Truth input manifest (active learning)")
    select.add_argument("--model-dir", required=True)
    select.add_argument("--runtime", choices=RUNTIMES, help=RUNTIME_HELP)
    select.add_argument("--input", required=True,
                        help="unlabelled sentences: text (one per line), JSON Lines ({\"text\": ...}) or a "
                             "Ground Truth manifest ({\"source\": ...})")
    select.add_argument("--budget", required=True, type=int, help="how many sentences to select")
    select.add_argument("--output", required=True, help="the file to write, in --format")
    select.add_argument("--format", choices=("ground-truth", "label-studio", "doccano"), default="ground-truth",
                        help="ground-truth: a Ground Truth input manifest (default); label-studio: a JSON list of "
                             "tasks pre-annotated with the model's entities; doccano: its JSONL with \"label\" spans")
    select.add_argument("--labelled", action="append", default=[],
                        help="labelled CoNLL or JSON Lines file or directory whose sentences are skipped (repeatable)")
    select.add_argument("--pre-annotate", metavar="LABEL_ATTRIBUTE_NAME",
                        help="ground-truth: add the model's entities under this label attribute, for an "
                             "adjustment job")
    select.add_argument("--batch-size", type=int, default=128)
    for command in (predict, select):
        command.add_argument("--label-config", metavar="FILE",
                             help="label-studio: the project's labelling config (XML), whose <Labels> and <Text> "
                                  "names the tasks use (default: the stock template's label, text and $text)")
        command.add_argument("--label-mapping", metavar="TYPE=LABEL,...",
                             help="label-studio: the config's label for each of the model's entity types that has "
                                  "another name there (default: the same name)")
    export = commands.add_parser("export", help="add the SavedModel (or the ONNX copies) to a model directory "
                                 "trained before the export existed, or rewrite it")
    export.add_argument("model_dir", metavar="MODEL_DIR", nargs="?")
    export.add_argument("--model-dir", dest="model_dir_option", metavar="MODEL_DIR", help="the same as MODEL_DIR")
    export.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                        help="savedmodel: the TensorFlow SavedModel in 1/ (default); onnx: onnx/ for ONNX Runtime, "
                             "float32 and int8")
    export.add_argument("--validation", metavar="FILE_OR_DIR",
                        help="onnx: labelled validation data to measure the int8 copy's F1 and calibration on (without "
                             "it only the float32 copy is checked, and int8 runs only when asked for)")
    export.add_argument("--quantization", choices=QUANTIZATIONS,
                        help="onnx: how the int8 copy is made (default: dynamic; static calibrates on --calibration)")
    export.add_argument("--calibration", metavar="FILE_OR_DIR",
                        help="onnx with --quantization static: training sentences to calibrate the activations on")
    calibrate = commands.add_parser("calibrate", help="fit the entity scores' temperature on validation data "
                                    "(never the test set) and save it with the model")
    calibrate.add_argument("model_dir", metavar="MODEL_DIR")
    calibrate.add_argument("validation", metavar="VALIDATION_FILE_OR_DIR",
                           help="labelled validation files in any format train reads")

    args = parser.parse_args(argv)
    if args.command == "export":
        if (args.model_dir is None) == (args.model_dir_option is None):
            parser.error("export: give the model directory once, as MODEL_DIR or --model-dir")
        args.model_dir = args.model_dir or args.model_dir_option
    if args.command == "select" and args.budget < 1:
        parser.error(f"--budget must be a positive number of sentences, got {args.budget}")
    if args.command == "train":
        return run_training(args.hyperparameters, args.base_dir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger().handlers[0].setFormatter(RedactingFormatter(LOG_FORMAT))
    try:
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "convert":
            return _convert(args)
        if args.command == "download":
            return _download(args)
        if args.command == "select":
            return _select(args)
        if args.command == "export":
            return _export(args)
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "serve":
            return _serve(args)
        return _predict(args)
    except AlbertNerError as error:
        print(f"albert-ner {args.command}: {redact_text(str(error))}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace) -> int:
    from albert_ner.data import read_channel
    from albert_ner.evaluation import evaluate
    from albert_ner.prediction import Predictor

    predictor = Predictor.load(args.model_dir, runtime=args.runtime)
    sentences, repairs = [], 0
    for name in args.files:
        read, read_report = read_channel(name, repair=args.repair_tags)
        sentences += read
        repairs += read_report.repairs
    predicted = predictor.predict_entities([sentence.tokens for sentence in sentences])
    report = evaluate(sentences, predicted)
    print(report.table())
    if args.output:
        write_text_atomically(Path(args.output), json.dumps(report.to_dict(), indent=2) + "\n")
    if args.report:
        from albert_ner.data_summary import summarize_split
        from albert_ner.evaluation import EvaluatedSplit
        from albert_ner.report_page import ReportPage, write_report_page

        summary = summarize_split("evaluated", sentences, predictor.tokenizer, predictor.window, repairs)
        write_report_page(Path(args.report), ReportPage(
            "albert-ner evaluation report", [EvaluatedSplit("evaluated", sentences, predicted, report)], [summary],
            provenance={"model directory": str(Path(args.model_dir).resolve()),
                        "files": ", ".join(str(Path(name).resolve()) for name in args.files)}))
    return 0


def _convert(args: argparse.Namespace) -> int:
    """Read as a job would (same readers, same hyperparameter checks) and write what was read."""
    from albert_ner.data import formatted, read_channel
    from albert_ner.hyperparameters import Hyperparameters

    given = {name: getattr(args, name) for name in ("tag_scheme", "input_tag_scheme", "label_attribute",
                                                     "overlapping_entities", "repair_tags", "utf16_offsets")}
    hp = Hyperparameters.from_strings({name: value for name, value in given.items() if value not in (None, False)})
    chunks = []
    for name in args.inputs:
        sentences, report = read_channel(name, **hp.read_options())
        log.info("%s: %s", name, report.describe())
        chunks += [formatted(sentence, args.to, hp.tag_scheme) for sentence in sentences]
    if args.output:
        write_text_atomically(Path(args.output), "".join(chunks))
    else:
        sys.stdout.write("".join(chunks))
    return 0


def _download(args: argparse.Namespace) -> int:
    from albert_ner.pretrained.sources import copy_pretrained, resolve_pretrained_model

    source = resolve_pretrained_model(args.name, os.environ)
    copy_pretrained(source, Path(args.to))
    print(f"{args.name} written to {args.to}: upload it as the `pretrained` channel")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from albert_ner.prediction import Predictor

    predictor = Predictor.load(args.model_dir, batch_size=args.batch_size, runtime=args.runtime)
    source = args.text if args.text else Path(args.input)
    with _output(args.output) as output:
        tasks = None if args.format == "jsonl" else _task_writer(args, output, predictor)
        stream_predictions(predictor, source, output, tasks=tasks)
        if tasks is not None:
            tasks.close()
    if tasks is not None:
        _report_left_out(tasks)
    return 0


@contextlib.contextmanager
def _output(name: str | None) -> Iterator[TextIO]:
    """Standard output, or the file ``name``, which appears (replacing any old one) only once complete."""
    if name is None:
        yield sys.stdout
        return
    with replacing(Path(name)) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        yield stream


def _task_writer(args: argparse.Namespace, output: TextIO, predictor: Predictor) -> TaskWriter:
    from albert_ner.labelling_tasks import LABEL_STUDIO, TaskWriter
    from albert_ner.model_directory import model_version

    interface = _labelling_interface(args, predictor.label_map.entity_types) if args.format == LABEL_STUDIO else None
    return TaskWriter(output, args.format, label_attribute=getattr(args, "label_attribute", None),
                      entity_types=predictor.label_map.entity_types, interface=interface,
                      model_version=model_version(Path(args.model_dir)))


def _labelling_interface(args: argparse.Namespace, entity_types: Sequence[str]) -> LabellingInterface:
    from albert_ner.label_studio.config import (
        LabelConfigError,
        parse_label_config,
        parse_label_mapping,
        stock_interface,
    )

    try:
        mapping = parse_label_mapping(args.label_mapping or "")
    except LabelConfigError as error:
        raise DataError(f"--label-mapping: {error}") from None
    if args.label_config is None:
        return stock_interface(entity_types, mapping)
    try:
        return parse_label_config(read_text(args.label_config), mapping)
    except LabelConfigError as error:
        raise DataError(str(error), args.label_config) from None


def _report_left_out(tasks: TaskWriter) -> None:
    if tasks.left_out:
        counts = ", ".join(f"{count} {entity_type}" for entity_type, count in sorted(tasks.left_out.items()))
        print(f"albert-ner: left out entities of types the labelling config has no label for: {counts} (map them "
              "with --label-mapping TYPE=LABEL)", file=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    from albert_ner.environment import ServingSettings
    from albert_ner.serving.server import run_server

    # The options stand for the variables SageMaker sets, and win over them.
    given = {"SM_MODEL_DIR": None if args.model_dir is None else str(Path(args.model_dir).resolve()),
             "SAGEMAKER_BIND_TO_PORT": None if args.port is None else str(args.port),
             "ALBERT_NER_BIND_HOST": args.host}
    environ = {**os.environ, **{variable: value for variable, value in given.items() if value is not None}}
    return run_server(ServingSettings.from_environ(environ))


def _export(args: argparse.Namespace) -> int:
    from albert_ner.data import read_channel
    from albert_ner.prediction import Predictor

    predictor = Predictor.load(args.model_dir, runtime=TENSORFLOW)  # both exports start from the Keras tagger
    if args.format == "savedmodel":
        from albert_ner.export import export_saved_model

        print(export_saved_model(predictor, Path(args.model_dir)))
        return 0
    from albert_ner.runtimes.onnx_export import export_onnx

    validation = read_channel(Path(args.validation), repair=True)[0] if args.validation else []
    calibration = read_channel(Path(args.calibration), repair=True)[0] if args.calibration else []
    quantization = args.quantization or QUANTIZATIONS[0]
    if quantization == "static" and not calibration:
        raise AlbertNerError("export --quantization static needs --calibration: training sentences to calibrate on")
    print(export_onnx(predictor, Path(args.model_dir), validation, calibration, quantization))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    """Fit, report and save the temperature; a SavedModel already there is exported again, since it bakes
    the temperature in."""
    from albert_ner.calibration import calibrate
    from albert_ner.data import read_channel
    from albert_ner.export import export_saved_model
    from albert_ner.model_directory import CALIBRATION_FILE, SAVED_MODEL_VERSION
    from albert_ner.prediction import Predictor

    model_dir = Path(args.model_dir)
    validation = read_channel(Path(args.validation), repair=True)[0]
    calibrated, fit = calibrate(Predictor.load(model_dir, runtime=TENSORFLOW), validation)
    report = {"temperature": fit.pop("temperature"), "fitted_on": str(args.validation), **fit}
    write_text_atomically(model_dir / CALIBRATION_FILE, json.dumps(report, indent=2) + "\n")
    if (model_dir / SAVED_MODEL_VERSION).exists():
        export_saved_model(calibrated, model_dir)
    print(json.dumps(report, indent=2))
    return 0


def _select(args: argparse.Namespace) -> int:
    from albert_ner.data import read_channel
    from albert_ner.labelling_tasks import GROUND_TRUTH, check_label_attribute
    from albert_ner.prediction import Predictor
    from albert_ner.selection import select

    args.label_attribute = None
    if args.pre_annotate is not None:
        if args.format != GROUND_TRUTH:
            raise DataError(f"--pre-annotate names a Ground Truth label attribute; --format {args.format} tasks "
                            "carry the model's entities without it")
        try:
            args.label_attribute = check_label_attribute(args.pre_annotate)
        except ValueError as error:
            raise DataError(str(error)) from None
    labelled: set[str] = set()
    for name in args.labelled:  # only the texts matter here, so tags that need repair are fine
        labelled.update("".join(sentence.tokens) for sentence in read_channel(Path(name), repair=True)[0])
    predictor = Predictor.load(args.model_dir, batch_size=args.batch_size, runtime=args.runtime)
    selection = select(predictor, read_texts(Path(args.input)), args.budget, labelled)
    with _output(args.output) as output:
        tasks = _task_writer(args, output, predictor)
        for candidate in selection.chosen:
            tasks.write(candidate.text, candidate.prediction)
        tasks.close()
    _report_left_out(tasks)
    print(selection.summary(), file=sys.stderr)
    if len(selection.chosen) < args.budget:
        print(f"albert-ner select: only {len(selection.chosen)} sentences could be selected for a budget of "
              f"{args.budget}", file=sys.stderr)
    return 0
