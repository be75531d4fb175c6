"""The SageMaker inference server behind ``docker run IMAGE serve``: raw text in, entities out, over HTTP.

SageMaker's contract: listen on 8080 (``SAGEMAKER_BIND_TO_PORT`` moves it), ``GET /ping`` within 2 s,
``POST /invocations``, optionally ``GET /execution-parameters`` for batch transform. The server is
nginx (where installed, as in the images) in front of gunicorn with threaded (``gthread``) workers. Each
worker loads the model in a background thread, so ``/ping`` answers at once: 503 while loading, 200 once
the model can answer, 500 if loading failed.

Requests are served through :class:`~albert_ner.prediction.Predictor`, the object that evaluates during
training and backs ``albert-ner predict``, so the endpoint, the CLI and the test report cannot disagree.
(The exported SavedModel computes the same thing, for the AWS TensorFlow Serving container.) Concurrent
requests meet in a :class:`~albert_ner.serving.batcher.DynamicBatcher`: the first text waits at most a
few milliseconds for others, and they go through the model as one batch, so throughput grows with the
number of clients.

``/invocations`` input (``Content-Type``):

- ``application/json``: ``{"text": "..."}`` -> ``{"entities": [...]}``; ``{"instances": [...]}`` or a
  JSON list of texts (strings or ``{"text": ...}``) -> ``{"predictions": [{"entities": [...]}, ...]}``.
- ``application/jsonlines``: one string or ``{"text": ...}`` per line; a blank line is an empty text.
- ``text/plain``: one text per line.

Output (``Accept``): ``application/json`` or ``application/jsonlines`` (one ``{"entities": [...]}`` line
per input text, in order). Without an ``Accept`` (or with ``*/*``) JSON input gets JSON and line input
gets JSON Lines. An entity is ``{"type", "start", "end", "text", "score"}``: character offsets, end
exclusive, and the model's probability (0 to 1) that exactly these characters form exactly this entity
(:mod:`albert_ner.confidence`).

Environment (read by :class:`~albert_ner.environment.ServingSettings`): ``SAGEMAKER_BIND_TO_PORT`` (8080),
``SM_MODEL_DIR`` or ``SAGEMAKER_BASE_DIR``/model
(/opt/ml/model), ``SAGEMAKER_MODEL_SERVER_WORKERS`` (as in AWS's inference toolkit; by default one per
core on ONNX Runtime, one per 4 cores on TensorFlow), ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (each request's
deadline: 60 s, 600 s in batch transform; then 504), ``SAGEMAKER_BATCH`` + ``SAGEMAKER_MAX_PAYLOAD_IN_MB``
(body limit in batch transform, 0 for none; 6 MB otherwise), ``ALBERT_NER_MAX_TEXTS_PER_REQUEST`` (real-time
requests: 1,000; 0 for none; then 413), ``SAGEMAKER_MAX_BATCH_SIZE`` (texts per model batch, 64) and
``SAGEMAKER_MAX_BATCH_DELAY_MS`` (5), ``ALBERT_NER_BIND_HOST`` (0.0.0.0), ``ALBERT_NER_NGINX`` (``off``:
no nginx in front).

The same port answers Label Studio's ML backend protocol (``GET /health``, ``POST /setup``, ``POST /predict``,
``POST /webhook``: :mod:`~albert_ner.serving.label_studio_backend`); with ``BASIC_AUTH_USER`` and
``BASIC_AUTH_PASS`` set, every route but ``/ping`` wants them. ``ALBERT_NER_LABEL_MAPPING`` maps entity types
to a labelling config's labels. Retraining from Label Studio (:mod:`~albert_ner.serving.retraining`) reads
``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``, ``ALBERT_NER_RETRAIN_HYPERPARAMETERS``,
``ALBERT_NER_RETRAIN_EVERY``, ``ALBERT_NER_RETRAIN_TIMEOUT`` and ``ALBERT_NER_STATE_DIR``.

Modules: :mod:`~albert_ner.serving.batcher` (the dynamic batcher), :mod:`~albert_ner.serving.http_codec`
(request bodies, content negotiation, rendering), :mod:`~albert_ner.serving.application` (the WSGI
application and the model loading), :mod:`~albert_ner.serving.nginx` (the nginx front),
:mod:`~albert_ner.serving.server` (the launch: nginx and gunicorn),
:mod:`~albert_ner.serving.label_studio_backend` (Label Studio's requests and answers).
"""
