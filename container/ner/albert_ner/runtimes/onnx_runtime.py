"""The tagger's numeric core on ONNX Runtime: the graph :mod:`albert_ner.runtimes.onnx_export` converted
from the TensorFlow core, float32 or with int8 weights. Imports neither TensorFlow nor Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

from albert_ner.errors import ModelDirectoryError
from albert_ner.model_directory import ModelDescription
from albert_ner.runtimes.choice import ONNX_FILES

#: The graph's inputs and outputs, by name (the names the export gives them).
INPUTS = ("ids", "lengths", "lexicon", "temperature")
OUTPUTS = ("tags", "marginal", "conditional", "closing")


def session_options(threads: int | None, spinning: bool = False) -> onnxruntime.SessionOptions:
    """All graph optimisations; ``threads`` intra-op threads (None: ONNX Runtime's default, one per core),
    one inter-op thread, and by default no spinning: idle threads must not take the CPU from the HTTP
    threads and the other workers (bench/onnx_threads.py measures both)."""
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


class OnnxCore:
    """:class:`~albert_ner.runtimes.choice.TaggingCore` on one ONNX Runtime session (CPU)."""

    model = None

    def __init__(self, path: Path, runtime: str, lexicon_size: int, threads: int | None = None):
        self.runtime = runtime
        self.lexicon_size = lexicon_size
        self.session = onnxruntime.InferenceSession(str(path), session_options(threads),
                                                    providers=["CPUExecutionProvider"])
        names = [value.name for value in self.session.get_inputs()]
        if sorted(names) != sorted(INPUTS):
            raise ModelDirectoryError(f"{ONNX_FILES[runtime]} takes the inputs {names}, not {list(INPUTS)}")

    def tag(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray) -> np.ndarray:
        return self.tag_with_probabilities(ids, lengths, lexicon, 1.0)[0]

    def tag_with_probabilities(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray,
                               temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        feeds = {"ids": np.ascontiguousarray(ids, np.int32), "lengths": np.ascontiguousarray(lengths, np.int32),
                 "lexicon": np.ascontiguousarray(lexicon, np.uint8), "temperature": np.array(temperature, np.float32)}
        tags, marginal, conditional, closing = self.session.run(list(OUTPUTS), feeds)
        return tags, marginal, conditional, closing


def load_onnx_core(model_dir: Path, description: ModelDescription, runtime: str,
                   threads: int | None = None) -> OnnxCore:
    path = model_dir / ONNX_FILES[runtime]
    if not path.is_file():
        raise ModelDirectoryError(f"the model directory has no {ONNX_FILES[runtime]}")
    try:
        return OnnxCore(path, runtime, description.lexicon_size, threads)
    except Exception as error:  # noqa: BLE001 - ONNX Runtime's protobuf, graph and load errors alike
        raise ModelDirectoryError(f"{ONNX_FILES[runtime]} cannot be loaded by ONNX Runtime") from error
