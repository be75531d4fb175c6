"""What a model directory holds (``/opt/ml/model``, which SageMaker packs into model.tar.gz) and how the
tagger is written into it and read back.

Every file a model directory can hold is named here, so the Predictor, the SavedModel export, the
calibration and the job's artifacts agree on one layout:

==========================  ==========================================================================
``model.weights.h5``        the tagger's weights (Keras)
``model_config.json``       the tagger's constructor arguments, window length, case folding, where the
                            pretrained encoder came from, and the lexicon's description
``label_map.json``          the tag scheme and the tags, in the order of the model's outputs
``vocab.txt``               the vocabulary, one token per line
``lexicon.txt``             the dictionaries the model sees as features (only with a lexicon)
``calibration.json``        ``{"temperature": T, ...}``, fitted on validation data (only when calibrated)
``1/``                      the self-contained TensorFlow SavedModel (:mod:`albert_ner.export`)
``onnx/tagger.onnx``        the tagger's numeric core for ONNX Runtime, float32 (:mod:`albert_ner.runtimes`)
``onnx/tagger.int8.onnx``   the same with int8 weights, made by ONNX Runtime's quantization tools
``onnx/agreement.json``     how the ONNX copies were made and how closely they agree with TensorFlow
``validation_report.*``     the validation scores, as JSON and as a table (``test_report.*`` likewise)
==========================  ==========================================================================
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from albert_ner.errors import DataError, ModelDirectoryError
from albert_ner.files import replacing, write_text_atomically
from albert_ner.lexicon import Lexicon, read_lexicon
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab

if TYPE_CHECKING:  # the files are read without TensorFlow, which the ONNX serving image does not have
    from albert_ner.modeling.tagger import AlbertTagger

WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "model_config.json"
LABEL_MAP_FILE = "label_map.json"
VOCAB_FILE = "vocab.txt"
LEXICON_FILE = "lexicon.txt"
CALIBRATION_FILE = "calibration.json"
#: The SavedModel's directory: a version number, as the AWS TensorFlow Serving container expects.
SAVED_MODEL_VERSION = "1"
ONNX_DIRECTORY = "onnx"
ONNX_FLOAT32_FILE = f"{ONNX_DIRECTORY}/tagger.onnx"
ONNX_INT8_FILE = f"{ONNX_DIRECTORY}/tagger.int8.onnx"
ONNX_AGREEMENT_FILE = f"{ONNX_DIRECTORY}/agreement.json"
#: The evaluation reports' file stems (each written as ``.json`` and ``.txt``).
VALIDATION_REPORT = "validation_report"
TEST_REPORT = "test_report"


@dataclass(frozen=True)
class ModelDescription:
    """Everything a model directory says about its tagger except the weights: what every runtime needs."""

    tagger_config: dict[str, Any]  # AlbertTagger's constructor arguments
    tokenizer: CharTokenizer
    label_map: LabelMap
    max_seq_length: int
    pretrained: dict | None  # provenance of the pretrained encoder
    temperature: float
    lexicon: Lexicon | None

    @property
    def lexicon_size(self) -> int:
        return int(self.tagger_config.get("lexicon_size", 0))


@dataclass(frozen=True)
class SavedTagger:
    """What :func:`save_model` writes: the Keras tagger with the vocabulary, labels and settings it needs."""

    model: AlbertTagger
    tokenizer: CharTokenizer
    label_map: LabelMap
    max_seq_length: int
    pretrained: dict | None
    temperature: float
    lexicon: Lexicon | None


def save_model(model_dir: Path, saved: SavedTagger) -> None:
    """Write weights, config, label map, vocabulary, and the lexicon and calibration where there are any."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with replacing(model_dir / WEIGHTS_FILE) as partial:
        saved.model.save_weights(partial)
    lexicon = None
    if saved.lexicon is not None:
        saved.lexicon.save(model_dir / LEXICON_FILE)
        lexicon = {"file": LEXICON_FILE, "channels": list(saved.lexicon.channels),
                   "sources": list(saved.lexicon.sources), "words": len(saved.lexicon.words)}
    config = {"tagger": saved.model.get_config(), "max_seq_length": saved.max_seq_length,
              "lower_case": saved.tokenizer.lower_case, "pretrained": saved.pretrained, "lexicon": lexicon}
    write_text_atomically(model_dir / CONFIG_FILE, json.dumps(config, ensure_ascii=False) + "\n")
    write_text_atomically(model_dir / LABEL_MAP_FILE,
                          json.dumps(saved.label_map.to_dict(), ensure_ascii=False, indent=2) + "\n")
    saved.tokenizer.vocab.save(model_dir / VOCAB_FILE)
    if saved.temperature != 1.0:
        write_text_atomically(model_dir / CALIBRATION_FILE, json.dumps({"temperature": saved.temperature}) + "\n")


def read_description(model_dir: Path) -> ModelDescription:
    """Read back what :func:`save_model` wrote, but the weights (a model without ``calibration.json`` scores
    at temperature 1); each runtime loads its own form of the weights.

    Whatever is missing or unreadable is a :class:`~albert_ner.errors.ModelDirectoryError` naming the file
    in the model directory's own terms; the underlying error is chained for the log.
    """
    if not model_dir.is_dir():
        raise ModelDirectoryError("the model directory does not exist (or is not a directory)")
    config = _read_json(model_dir, CONFIG_FILE)
    try:
        label_map = LabelMap.from_dict(_read_json(model_dir, LABEL_MAP_FILE))
        tokenizer = CharTokenizer(_read_vocab(model_dir), lower_case=config["lower_case"])
        tagger_config = dict(config["tagger"])
        max_seq_length = int(config["max_seq_length"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelDirectoryError(f"{CONFIG_FILE} or {LABEL_MAP_FILE} does not describe a tagger "
                                  f"({type(error).__name__}: {error})") from error
    temperature = 1.0
    if (model_dir / CALIBRATION_FILE).exists():
        try:
            temperature = float(_read_json(model_dir, CALIBRATION_FILE)["temperature"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelDirectoryError(f"{CALIBRATION_FILE} holds no temperature ({type(error).__name__})") from error
    lexicon = None
    if config.get("lexicon"):
        name = config["lexicon"]["file"]
        try:
            lexicon = read_lexicon([model_dir / name], config["lexicon"]["sources"])
        except DataError as error:
            raise ModelDirectoryError(f"{name}{'' if error.line is None else f':{error.line}'}: {error.reason}"
                                      ) from error
        if list(lexicon.channels) != config["lexicon"]["channels"]:
            raise ModelDirectoryError(f"{name} does not give the channels {CONFIG_FILE} names: the model "
                                      "directory is inconsistent")
    return ModelDescription(tagger_config, tokenizer, label_map, max_seq_length, config.get("pretrained"),
                            temperature, lexicon)


def model_version(model_dir: Path) -> str:
    """A name for exactly this model, ``albert-ner-`` and 12 hex digits of a sha256 over its weights, tags
    and calibration: Label Studio keeps each prediction's model version, so predictions of a retrained or
    recalibrated model are told apart from the old ones, and the same files always give the same name."""
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, LABEL_MAP_FILE, CALIBRATION_FILE):
        try:
            with open(model_dir / name, "rb") as stream:
                digest.update(name.encode() + b"\0" + hashlib.file_digest(stream, "sha256").digest())
        except FileNotFoundError:
            if name != CALIBRATION_FILE:
                raise ModelDirectoryError(f"the model directory has no {name}") from None
    return f"albert-ner-{digest.hexdigest()[:12]}"


def _read_json(model_dir: Path, name: str) -> Any:
    try:
        text = (model_dir / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelDirectoryError(f"the model directory has no {name}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelDirectoryError(f"{name} cannot be read ({type(error).__name__})") from error
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f"line {error.lineno}, column {error.colno}: {error.msg}" if isinstance(error, json.JSONDecodeError) \
            else "nested too deeply"
        raise ModelDirectoryError(f"{name} is not JSON ({where})") from None


def _read_vocab(model_dir: Path) -> Vocab:
    try:
        return Vocab.from_file(model_dir / VOCAB_FILE)
    except DataError as error:
        raise ModelDirectoryError(f"{VOCAB_FILE}{'' if error.line is None else f':{error.line}'}: {error.reason}"
                                  ) from error
    except FileNotFoundError:
        raise ModelDirectoryError(f"the model directory has no {VOCAB_FILE}") from None
