"""The launch of ``serve``: nginx in front (:mod:`albert_ner.serving.nginx`) of gunicorn's threaded workers,
each loading the model after the fork; gunicorn alone where nginx is not installed."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from albert_ner.environment import ServingSettings
from albert_ner.label_studio.client import LabelStudioClient
from albert_ner.serving.application import InferenceApp, create_app
from albert_ner.serving.child_process import die_with_parent
from albert_ner.serving.nginx import NGINX_VARIABLE, nginx_binary, write_config

log = logging.getLogger("albert_ner.serving")


def run_server(settings: ServingSettings | None = None) -> int:
    """Serve until SIGTERM, then let the requests in flight finish and return gunicorn's exit status.

    With nginx this process supervises two children: gunicorn (on a Unix socket) and nginx (on the port).
    SIGTERM goes to gunicorn first, which drains its workers while nginx still relays their answers; then
    nginx stops. If either child dies, the other is stopped and the status is non-zero, so that the
    platform restarts the container. Both children die with this process (``PR_SET_PDEATHSIG``).
    """
    resolved = settings or ServingSettings.from_environ()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    LabelStudioClient.from_environ(os.environ)  # a bad LABEL_STUDIO_URL stops serve now, not the first retrain
    if resolved.state_dir is not None:
        return _serve(resolved)
    # The workers' shared state (retrains, the model to serve) lives as long as the server. Only this process
    # removes it: gunicorn's workers, forked from it, leave through the same frames when they exit.
    state, owner = Path(tempfile.mkdtemp(prefix="albert-ner-state-")), os.getpid()
    log.info("state directory (retrains and the model they put in place): %s", state)
    try:
        return _serve(dataclasses.replace(resolved, state_dir=state))
    finally:
        if os.getpid() == owner:
            shutil.rmtree(state, ignore_errors=True)


def _serve(resolved: ServingSettings) -> int:
    nginx = nginx_binary()
    front = "nginx in front" if nginx else f"no nginx in front (not installed, or {NGINX_VARIABLE}=off)"
    log.info("serving %s on %s:%d: %d worker(s) x %d threads, %d intra-op (model) threads each, body limit %s, "
             "deadline %d s%s; %s", resolved.model_dir, resolved.host, resolved.port, resolved.workers,
             resolved.threads, resolved.intra_op_threads,
             f"{resolved.max_payload_mb} MB" if resolved.max_payload_mb else "none", resolved.timeout,
             " (batch transform)" if resolved.batch_mode else "", front)
    if nginx is None:
        log.warning("slow clients can hold gunicorn's threads without nginx in front")
        _run_gunicorn(resolved, f"{resolved.host}:{resolved.port}")
        return 0
    with tempfile.TemporaryDirectory(prefix="albert-ner-serve-") as scratch:
        directory = Path(scratch)
        upstream = directory / "gunicorn.sock"
        config = write_config(directory, resolved, upstream)
        sys.stdout.flush()
        gunicorn = os.fork()
        if gunicorn == 0:  # the child: gunicorn's master
            die_with_parent(signal.SIGTERM)
            os._exit(_exit_status(lambda: _run_gunicorn(resolved, f"unix:{upstream}")))
        # In a session of its own: a signal to the whole process group (Ctrl-C, `timeout`) reaches this
        # process, which stops nginx only after gunicorn has drained.
        proxy = subprocess.Popen([nginx, "-c", str(config)], start_new_session=True,
                                 preexec_fn=lambda: die_with_parent(signal.SIGTERM))
        return _supervise(gunicorn, proxy)


def _supervise(gunicorn: int, proxy: subprocess.Popen) -> int:
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        os.kill(gunicorn, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        pid, status = os.wait()
        if pid == gunicorn:
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                log.error("gunicorn exited (status %d); stopping nginx", code)
            proxy.send_signal(signal.SIGQUIT)  # graceful: what it relays is done, gunicorn is gone
            proxy.wait()
            return code if stopping else max(code, 1)
        if pid == proxy.pid:
            proxy.returncode = os.waitstatus_to_exitcode(status)
            log.error("nginx exited (status %d); stopping gunicorn", proxy.returncode)
            if not stopping:
                os.kill(gunicorn, signal.SIGTERM)
            os.waitpid(gunicorn, 0)
            return 1


def _exit_status(run: Any) -> int:
    """The status ``run()`` exits with (gunicorn's master ends with ``sys.exit``); 1 if it raises."""
    try:
        run()
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    except BaseException:  # noqa: BLE001 - the forked child must not return into the parent's code
        log.exception("gunicorn failed")
        return 1
    return 0


def _run_gunicorn(resolved: ServingSettings, bind: str) -> None:
    """Run gunicorn in this process (it becomes the master: SIGTERM drains the workers, then exit 0)."""
    from gunicorn.app.base import BaseApplication

    class GunicornServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": [bind],
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

    GunicornServer().run()
