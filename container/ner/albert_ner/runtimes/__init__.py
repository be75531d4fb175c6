"""The runtimes that run the tagger's numeric core: padded character ids, lengths and dictionary features in,
the best tags and their log-probabilities out (:class:`~albert_ner.runtimes.choice.TaggingCore`).

Everything around the core (windows, dictionary matching, entities and their scores) is the Predictor's
own Python code, shared by every runtime:

- ``tensorflow_runtime.py``: the Keras tagger, traced with ``tf.function`` (training, and any model);
- ``onnx_runtime.py``: the same core converted to ONNX (float32, or int8 weights), on ONNX Runtime, for
  which neither TensorFlow nor this package's training code needs to be installed;
- ``onnx_export.py``: the conversion (tf2onnx), the quantization (ONNX Runtime's own tools) and the
  agreement check that decides whether an ONNX copy may be the default;
- ``choice.py``: which runtime a model directory runs on (``ALBERT_NER_RUNTIME``, ``--runtime``).
"""
