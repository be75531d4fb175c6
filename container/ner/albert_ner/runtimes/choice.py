"""Which runtime runs a model directory, and what every runtime's numeric core provides.

The runtime is asked for with ``ALBERT_NER_RUNTIME`` or a ``--runtime`` flag (``tensorflow``, ``onnx``,
``onnx-int8``). Without either, a model directory runs on the fastest runtime it holds whose agreement with
TensorFlow held when it was exported (``onnx/agreement.json``, :mod:`albert_ner.runtimes.onnx_export`):
int8, then float32 ONNX (the order measured by ``bench/bench_inference.py``), else TensorFlow. A model
directory without ``onnx/`` (written before ONNX export existed) runs on TensorFlow and says so once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from albert_ner.errors import AlbertNerError, ModelDirectoryError
from albert_ner.model_directory import ONNX_AGREEMENT_FILE, ONNX_FLOAT32_FILE, ONNX_INT8_FILE

log = logging.getLogger(__name__)

TENSORFLOW, ONNX, ONNX_INT8 = "tensorflow", "onnx", "onnx-int8"
RUNTIMES = (TENSORFLOW, ONNX, ONNX_INT8)
RUNTIME_VARIABLE = "ALBERT_NER_RUNTIME"
#: The ONNX model file of each ONNX runtime, in the model directory.
ONNX_FILES = {ONNX: ONNX_FLOAT32_FILE, ONNX_INT8: ONNX_INT8_FILE}
#: How the int8 copy is made (:func:`albert_ner.runtimes.onnx_export.quantize`). Dynamic is the default: on
#: the main job's model static quantization lost 0.009 validation F1 and ran slower (docs/serving.md#runtimes).
QUANTIZATIONS = ("dynamic", "static")
#: Fastest first (bench/README.md); a runtime is a default only where its agreement held.
PREFERENCE = (ONNX_INT8, ONNX)


class TaggingCore(Protocol):
    """The numeric core of a tagger on one runtime. Arrays are right-padded batches of windows:
    ``ids [B, T]`` int32, ``lengths [B]`` int32, ``lexicon [B, T, lexicon_size]`` uint8."""

    runtime: str
    lexicon_size: int
    #: The Keras tagger where the runtime has one (TensorFlow): training, saving and the SavedModel need it.
    model: Any

    def tag(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray) -> np.ndarray:
        """The best tag ids ``[B, T]`` int32, 0 past each length."""

    def tag_with_probabilities(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray,
                               temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The best tags and their (marginal, conditional, closing) log-probabilities ``[B, T]`` float32 at
        ``temperature`` (:class:`~albert_ner.modeling.crf.PathProbabilities`)."""


def requested_runtime(value: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The runtime a flag (``value``) or ``ALBERT_NER_RUNTIME`` asks for; None when neither does."""
    environ = os.environ if environ is None else environ
    source, value = ("--runtime", value) if value else (RUNTIME_VARIABLE, environ.get(RUNTIME_VARIABLE, ""))
    value = value.strip()
    if not value:
        return None
    if value not in RUNTIMES:
        raise AlbertNerError(f"{source}={value!r} is not a runtime; expected one of {', '.join(RUNTIMES)}")
    return value


def read_agreement(model_dir: Path) -> dict[str, Any] | None:
    """What the ONNX export measured (``onnx/agreement.json``), or None for a model directory without one."""
    path = model_dir / ONNX_AGREEMENT_FILE
    if not path.is_file():
        return None
    try:
        agreement = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelDirectoryError(f"{ONNX_AGREEMENT_FILE} cannot be read ({type(error).__name__})") from error
    if not isinstance(agreement, dict) or not isinstance(agreement.get("runtimes"), dict):
        raise ModelDirectoryError(f"{ONNX_AGREEMENT_FILE} has no \"runtimes\" object")
    return agreement


_said_no_onnx: set[Path] = set()


def choose_runtime(model_dir: Path, requested: str | None = None, announce: bool = True) -> str:
    """``requested`` when the model directory has it (else a :class:`ModelDirectoryError`), or the default;
    ``announce``: log (once per directory) that a directory without ONNX copies runs on TensorFlow."""
    agreement = read_agreement(model_dir)
    if requested is not None:
        if requested != TENSORFLOW and not (model_dir / ONNX_FILES[requested]).is_file():
            raise ModelDirectoryError(
                f"the runtime {requested} needs {ONNX_FILES[requested]}, which the model directory does not "
                f"have; write it with `albert-ner export --format onnx --model-dir DIR`, or run on tensorflow")
        return requested
    if agreement is None:
        if announce and model_dir.resolve() not in _said_no_onnx:
            _said_no_onnx.add(model_dir.resolve())
            log.info("the model directory has no %s (it was written before ONNX export): running on TensorFlow; "
                     "`albert-ner export --format onnx --model-dir DIR` adds the faster runtimes", ONNX_AGREEMENT_FILE)
        return TENSORFLOW
    for runtime in PREFERENCE:
        measured = agreement["runtimes"].get(runtime) or {}
        if measured.get("holds") is True and (model_dir / ONNX_FILES[runtime]).is_file():
            return runtime
    return TENSORFLOW
