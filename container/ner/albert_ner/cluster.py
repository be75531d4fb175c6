"""Choosing the tf.distribute strategy: one device, several on one instance, or several instances.

With several SageMaker hosts, ``MultiWorkerMirroredStrategy`` needs ``TF_CONFIG``, which SageMaker does not
set for a bring-your-own image: it is built here from ``resourceconfig.json`` (hosts in sorted order, this
host's index), NCCL is pointed at the instance's network interface, and host names are resolved with
retries because the other instances' DNS entries can appear some seconds after the job starts.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

import tensorflow as tf

from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import AlbertNerError

log = logging.getLogger("albert_ner.cluster")

# Worker i listens on WORKER_PORT + i, so that several workers can also share one machine (tests).
WORKER_PORT = int(os.environ.get("ALBERT_NER_WORKER_PORT", "7777"))


def choose_strategy(env: TrainingEnvironment) -> tf.distribute.Strategy:
    """The strategy for this job; must run before TensorFlow initialises its devices."""
    if len(env.hosts) > 1:
        configure_multi_worker(env)
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public name: MultiWorkerMirroredStrategy's class calls itself CollectiveAllReduceStrategy."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__.lstrip("_")


def tf_config(env: TrainingEnvironment) -> dict:
    """``TF_CONFIG`` for this host: every host as a worker, in ``resourceconfig.json``'s sorted order."""
    workers = [f"{host}:{WORKER_PORT + index}" for index, host in enumerate(env.hosts)]
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": env.hosts.index(env.current_host)}}


def configure_multi_worker(env: TrainingEnvironment, attempts: int = 30, delay: float = 2.0) -> None:
    for host in env.hosts:
        _resolve(host, attempts, delay)
    config = tf_config(env)
    os.environ["TF_CONFIG"] = json.dumps(config)
    if env.network_interface_name:
        os.environ.setdefault("NCCL_SOCKET_IFNAME", env.network_interface_name)
    log.info("multi-worker job: TF_CONFIG=%s NCCL_SOCKET_IFNAME=%s", os.environ["TF_CONFIG"],
             os.environ.get("NCCL_SOCKET_IFNAME", "(unset)"))


def _resolve(host: str, attempts: int, delay: float) -> None:
    for attempt in range(1, attempts + 1):
        try:
            socket.getaddrinfo(host, None)
            return
        except socket.gaierror as error:
            if attempt == attempts:
                raise AlbertNerError(f"cannot resolve host {host!r} of resourceconfig.json after {attempts} "
                                     f"attempts: {error}") from None
            log.info("host %s does not resolve yet (%s); retrying in %.0f s", host, error, delay)
            time.sleep(delay)
