"""The ONNX copies of a trained tagger's numeric core, and the check that decides whether they may serve.

``onnx/tagger.onnx`` is :func:`~albert_ner.runtimes.tensorflow_runtime.tag_with_probabilities` (the ALBERT
encoder, BiLSTM, projection, Viterbi and the forward-backward path probabilities), converted by tf2onnx
from the very ``tf.function`` the TensorFlow runtime traces; nothing of the graph is written by hand.
``onnx/tagger.int8.onnx`` is that graph with int8 weights, made by ONNX Runtime's quantization tools:
``dynamic`` (weights quantized ahead, activations per batch at run time) or ``static`` (activations'
ranges calibrated on training sentences, QDQ format). Windows, dictionary matching, entities and scores
stay in the Predictor's Python code, which every runtime shares.

``onnx/agreement.json`` records, per ONNX runtime, what was measured against the TensorFlow Predictor
and whether it holds, which is what makes a runtime eligible as a model directory's default
(:func:`~albert_ner.runtimes.choice.choose_runtime`):

- ``onnx``: the same entities on every checked sentence and every entity score within ``1e-5``;
- ``onnx-int8``: on gold-labelled (validation) sentences, entity F1 at most ``0.003`` below float32's and
  the entity scores' calibration error (ECE) within ``0.01`` of float32's. Without gold sentences it is
  not measured (``holds: null``) and int8 runs only when asked for.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from albert_ner.calibration import entity_outcomes, reliability
from albert_ner.evaluation import evaluate
from albert_ner.files import replacing
from albert_ner.model_directory import ONNX_AGREEMENT_FILE, ONNX_DIRECTORY, ONNX_FLOAT32_FILE, ONNX_INT8_FILE
from albert_ner.prediction import Predictor
from albert_ner.runtimes.choice import ONNX, ONNX_INT8, QUANTIZATIONS
from albert_ner.runtimes.onnx_runtime import OUTPUTS, OnnxCore
from albert_ner.runtimes.tensorflow_runtime import core_signature, tag_with_probabilities
from albert_ner.sentences import Sentence

log = logging.getLogger(__name__)

OPSET = 17
SCORE_TOLERANCE = 1e-5
INT8_F1_LOSS = 0.003
INT8_ECE_CHANGE = 0.01
#: Sentences the static quantization calibrates the activations' ranges on.
CALIBRATION_SENTENCES = 512


def _select_as_where(ctx: Any, node: Any, name: str, args: Any) -> Any:
    """Convert TensorFlow's ``SelectV2`` (``tf.where``) to ONNX ``Where``.

    tf2onnx writes a float select as ``cond * x + (1 - cond) * y`` unless it proves neither side infinite;
    the CRF's disallowed transitions are ``-inf``, and ``0 * -inf`` is NaN.
    """
    node.type = "Where"
    return node


def _erfc_as_one_minus_erf(ctx: Any, node: Any, name: str, args: Any) -> Any:
    """Convert TensorFlow's ``Erfc`` (the exact GELU of transformers checkpoints) to ``1 - Erf``: ONNX has
    ``Erf`` and tf2onnx no ``Erfc``."""
    from onnx import helper

    output = node.output[0]
    node.type = "Erf"
    one = ctx.make_const(f"{node.name}_one", np.array(1, helper.tensor_dtype_to_np_dtype(ctx.get_dtype(output))))
    ctx.insert_new_node_on_output("Sub", output, inputs=[one.output[0], output])
    return node


CUSTOM_OPS: dict[str, tuple[Any, list]] = {"SelectV2": (_select_as_where, []), "Erfc": (_erfc_as_one_minus_erf, [])}


def convert(predictor: Predictor, path: Path) -> None:
    """Write the float32 ONNX graph of ``predictor``'s core (TensorFlow runtime) to ``path``."""
    import tf2onnx

    model = predictor.model
    continuations = predictor.label_map.continuations()

    def core(ids: tf.Tensor, lengths: tf.Tensor, lexicon: tf.Tensor, temperature: tf.Tensor) -> dict[str, tf.Tensor]:
        return dict(zip(OUTPUTS, tag_with_probabilities(model, continuations, ids, lengths, lexicon, temperature),
                        strict=True))

    signature = core_signature(model.lexicon_size)
    function = tf.function(core, input_signature=signature)
    with _quiet_loggers():
        tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET,
                                      custom_op_handlers=CUSTOM_OPS, output_path=str(path))


def quantize(float32: Path, int8: Path, method: str, batches: Iterator[dict[str, np.ndarray]] | None = None) -> None:
    """Write the int8 copy of ``float32`` with ONNX Runtime's ``quantize_dynamic`` or ``quantize_static``
    (the latter calibrated on ``batches`` of the graph's inputs)."""
    from onnxruntime import quantization

    if method == "dynamic":
        with _quiet_loggers():
            quantization.quantize_dynamic(float32, int8, weight_type=quantization.QuantType.QInt8,
                                          op_types_to_quantize=["MatMul"])
        return
    if method != "static":
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {method!r}")
    if batches is None:
        raise ValueError("static quantization needs calibration sentences")
    remaining = batches

    class Reader(quantization.CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(remaining, None)

    with _quiet_loggers():
        quantization.quantize_static(float32, int8, Reader(), quant_format=quantization.QuantFormat.QDQ,
                                     activation_type=quantization.QuantType.QInt8,
                                     weight_type=quantization.QuantType.QInt8, op_types_to_quantize=["MatMul"],
                                     per_channel=True)


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    """tf2onnx logs each conversion step at INFO, and ONNX Runtime's quantization a line per tensor to the root
    logger: keep them out of the job's log (warnings still show)."""
    loggers = [logging.getLogger(), logging.getLogger("tf2onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def input_batches(predictor: Predictor, sentences: Sequence[Sentence]) -> Iterator[dict[str, np.ndarray]]:
    """The core's inputs for ``sentences``, batched as the Predictor batches them (the lexicon matched on
    the whole sentence; windows cut as for prediction)."""
    _, windows, features = predictor.windows([sentence.tokens for sentence in sentences])
    for _, ids, lengths, lexicon in predictor.batches(windows, features):
        yield {"ids": ids, "lengths": lengths, "lexicon": lexicon, "temperature": np.array(1.0, np.float32)}


def vocabulary_sample(predictor: Predictor, count: int = 200, seed: int = 0) -> list[Sentence]:
    """Random texts over the vocabulary's characters, of 1 to 3 windows: what the float32 check runs on
    when no sentences are given (exactness needs no gold labels)."""
    rng = np.random.default_rng(seed)
    characters = [token for token in predictor.tokenizer.vocab.tokens if len(token) == 1] or ["a"]
    lengths = rng.integers(1, 3 * predictor.window, count)
    return [Sentence(tokens=tuple(rng.choice(characters, length)), entities=()) for length in lengths]


def on_core(predictor: Predictor, core: OnnxCore) -> Predictor:
    """``predictor``'s vocabulary, labels, lexicon and temperature on another core."""
    return Predictor(core, predictor.tokenizer, predictor.label_map, predictor.max_seq_length, predictor.batch_size,
                     predictor.pretrained, predictor.temperature, predictor.lexicon)


def measure_agreement(reference: Predictor, float32: Predictor, int8: Predictor, sentences: Sequence[Sentence],
                      gold: bool) -> dict[str, Any]:
    """Each ONNX predictor against the TensorFlow one on ``sentences`` (the module docstring's criteria)."""
    tokens = [list(sentence.tokens) for sentence in sentences]
    expected = reference.predict(tokens)
    runtimes: dict[str, Any] = {}
    float32_predicted: list = []
    for runtime, predictor in ((ONNX, float32), (ONNX_INT8, int8)):
        started = time.perf_counter()
        predicted = predictor.predict(tokens)
        seconds = time.perf_counter() - started
        same = [ours.entities == theirs.entities for ours, theirs in zip(predicted, expected, strict=True)]
        differences = [abs(a - b) for ours, theirs, equal in zip(predicted, expected, same, strict=True) if equal
                       for a, b in zip(ours.scores, theirs.scores, strict=True)]
        measured: dict[str, Any] = {"sentences": len(tokens), "identical_entities": int(sum(same)),
                                    "largest_score_difference": max(differences, default=0.0),
                                    "seconds": round(seconds, 3)}
        if runtime == ONNX:
            measured["holds"] = all(same) and measured["largest_score_difference"] <= SCORE_TOLERANCE
            float32_predicted = predicted
        elif gold:  # int8 against float32 ONNX, as the criterion reads
            f1, reference_f1 = (evaluate(sentences, [p.entities for p in ps]).f1
                                for ps in (predicted, float32_predicted))
            ece, reference_ece = (reliability(entity_outcomes(sentences, ps)).ece
                                  for ps in (predicted, float32_predicted))
            measured.update({"f1": f1, "float32_f1": reference_f1, "f1_loss": reference_f1 - f1, "ece": ece,
                             "float32_ece": reference_ece, "ece_change": abs(ece - reference_ece)})
            measured["holds"] = bool(measured["f1_loss"] <= INT8_F1_LOSS and measured["ece_change"] <= INT8_ECE_CHANGE)
        else:
            measured["holds"] = None
        runtimes[runtime] = measured
    return runtimes


def export_onnx(predictor: Predictor, model_dir: Path, validation: Sequence[Sentence] = (),
                calibration: Sequence[Sentence] = (), quantization: str = "dynamic") -> Path:
    """Write ``model_dir/onnx`` (replacing one already there) and return it.

    ``validation``: gold sentences the agreement is measured on (none: a vocabulary sample, and int8 is not
    measured); ``calibration``: the sentences static quantization calibrates on.
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    check = list(validation) or vocabulary_sample(predictor)
    with replacing(model_dir / ONNX_DIRECTORY) as partial:
        partial.mkdir()
        float32_path = partial / Path(ONNX_FLOAT32_FILE).name
        int8_path = partial / Path(ONNX_INT8_FILE).name
        convert(predictor, float32_path)
        converted = time.perf_counter()
        batches = input_batches(predictor, list(calibration)[:CALIBRATION_SENTENCES]) if calibration else None
        quantize(float32_path, int8_path, quantization, batches)
        quantized = time.perf_counter()
        cores = [OnnxCore(path, runtime, predictor.core.lexicon_size)
                 for path, runtime in ((float32_path, ONNX), (int8_path, ONNX_INT8))]
        runtimes = measure_agreement(predictor, on_core(predictor, cores[0]), on_core(predictor, cores[1]), check,
                                     gold=bool(validation))
        agreement = {
            "converter": f"tf2onnx {importlib.metadata.version('tf2onnx')}", "opset": OPSET,
            "onnxruntime": importlib.metadata.version("onnxruntime"), "quantization": quantization,
            "checked_on": "validation sentences" if validation else "random texts over the vocabulary",
            "runtimes": runtimes,
        }
        (partial / Path(ONNX_AGREEMENT_FILE).name).write_text(json.dumps(agreement, indent=2) + "\n", encoding="utf-8")
    log.info("ONNX export in %.1f s (conversion %.1f s, %s int8 quantization %.1f s): float32 %d/%d sentences with "
             "the same entities (holds: %s), int8 %s", time.perf_counter() - started, converted - started,
             quantization, quantized - converted, runtimes[ONNX]["identical_entities"], len(check),
             runtimes[ONNX]["holds"],
             f"F1 loss {runtimes[ONNX_INT8]['f1_loss']:.4f}, ECE change {runtimes[ONNX_INT8]['ece_change']:.4f} "
             f"(holds: {runtimes[ONNX_INT8]['holds']})" if "f1_loss" in runtimes[ONNX_INT8] else "not measured")
    return model_dir / ONNX_DIRECTORY
