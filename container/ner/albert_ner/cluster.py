"""The tf.distribute side of a job: choosing the strategy (one device, several on one instance, or several
instances) and splitting each global batch across its replicas.

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
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from albert_ner.errors import AlbertNerError

log = logging.getLogger("albert_ner.cluster")



def choose_strategy(hosts: Sequence[str], current_host: str, worker_port: int,
                    network_interface_name: str | None = None) -> tf.distribute.Strategy:
    """The strategy for this job; must run before TensorFlow initialises its devices.

    The arguments are ``resourceconfig.json``'s (hosts sorted) and the first worker's port.
    """
    if len(hosts) > 1:
        configure_multi_worker(hosts, current_host, worker_port, network_interface_name)
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


def tf_config(hosts: Sequence[str], current_host: str, worker_port: int) -> dict:
    """``TF_CONFIG`` for this host: every host as a worker (host i on ``worker_port`` + i), in order."""
    workers = [f"{host}:{worker_port + index}" for index, host in enumerate(hosts)]
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": list(hosts).index(current_host)}}


def configure_multi_worker(hosts: Sequence[str], current_host: str, worker_port: int,
                           network_interface_name: str | None, attempts: int = 30, delay: float = 2.0) -> None:
    for host in hosts:
        _resolve(host, attempts, delay)
    config = tf_config(hosts, current_host, worker_port)
    os.environ["TF_CONFIG"] = json.dumps(config)
    if network_interface_name:
        os.environ.setdefault("NCCL_SOCKET_IFNAME", network_interface_name)
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


def distribute_batch(strategy: tf.distribute.Strategy, *arrays: np.ndarray) -> tuple:
    """Split one global batch across the replicas (rows), or pass it through with a single replica."""
    if strategy.num_replicas_in_sync == 1:
        return tuple(tf.constant(array) for array in arrays)
    replicas = strategy.num_replicas_in_sync

    def shard(context: tf.distribute.InputContext, array: np.ndarray):
        part = np.array_split(array, replicas)[context.replica_id_in_sync_group]
        return tf.constant(part)

    return tuple(strategy.experimental_distribute_values_from_function(
        lambda context, array=array: shard(context, array)) for array in arrays)
