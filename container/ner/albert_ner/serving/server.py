"""The gunicorn launch of ``serve``: threaded workers, each loading the model after the fork."""

from __future__ import annotations

import logging
import sys

from albert_ner.environment import ServingSettings
from albert_ner.serving.application import InferenceApp, create_app

log = logging.getLogger("albert_ner.serving")


def run_server(settings: ServingSettings | None = None) -> int:
    """Run gunicorn in this process (it becomes the master: SIGTERM drains the workers, then exit 0)."""
    from gunicorn.app.base import BaseApplication

    resolved = settings or ServingSettings.from_environ()

    class GunicornServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": [f"{resolved.host}:{resolved.port}"],
                "worker_class": "gthread",
                "workers": resolved.workers,
                "threads": resolved.threads,
                "timeout": resolved.timeout,
                "graceful_timeout": resolved.timeout,
                "keepalive": 5,
                "errorlog": "-",
                "loglevel": "info",
                "proc_name": "albert-ner-serve",
            }
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1: no shared socket in $HOME
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> InferenceApp:
            return create_app(resolved)  # in the worker, after the fork: TensorFlow never runs in the master

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    log.info("serving %s on %s:%d: %d worker(s) x %d threads, %d intra-op (model) threads each, body limit %d MB%s",
             resolved.model_dir, resolved.host, resolved.port, resolved.workers, resolved.threads,
             resolved.intra_op_threads, resolved.max_payload_mb, " (batch transform)" if resolved.batch_mode else "")
    GunicornServer().run()
    return 0
