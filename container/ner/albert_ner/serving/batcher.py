"""Merging the texts of concurrent requests into model batches, on the one thread that runs the model."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("albert_ner.serving")


class DynamicBatcher:
    """Merges the texts of concurrent requests into model batches.

    A batch starts with the oldest waiting request and takes more until it holds ``max_batch_size``
    texts or ``max_delay`` has passed since it started; a request is never split, so one larger than
    ``max_batch_size`` is a batch of its own (the predictor cuts it into model batches). ``predict`` runs
    on one thread, the only one that touches the model.
    """

    def __init__(self, predict: Callable[[list[str]], list[Any]], max_batch_size: int = 64,
                 max_delay: float = 0.005):
        self._predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay = max_delay
        self._pending: list[tuple[list[str], Future]] = []
        self._condition = threading.Condition()
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name="dynamic-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str]) -> Future:
        future: Future = Future()
        if not texts:
            future.set_result([])
            return future
        with self._condition:
            self._pending.append((list(texts), future))
            self._condition.notify()
        return future

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        return self.submit(texts).result(timeout)

    def _take_batch(self) -> list[tuple[list[str], Future]]:
        with self._condition:
            while not self._pending:
                self._condition.wait()
            deadline = time.monotonic() + self.max_delay
            while True:
                count, taken = 0, 0
                for texts, _ in self._pending:
                    if taken and count + len(texts) > self.max_batch_size:
                        break
                    count += len(texts)
                    taken += 1
                remaining = deadline - time.monotonic()
                if count >= self.max_batch_size or taken < len(self._pending) or remaining <= 0:
                    batch, self._pending = self._pending[:taken], self._pending[taken:]
                    return batch
                self._condition.wait(remaining)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            texts = [text for request_texts, _ in batch for text in request_texts]
            try:
                results = self._predict(texts)
            except Exception as error:  # noqa: BLE001 - the request at fault gets the error; the thread goes on
                log.exception("prediction failed for a batch of %d texts from %d request(s)", len(texts), len(batch))
                if len(batch) == 1:
                    batch[0][1].set_exception(error)
                else:
                    self._predict_alone(batch)
                continue
            self.batches += 1
            position = 0
            for request_texts, future in batch:
                future.set_result(results[position:position + len(request_texts)])
                position += len(request_texts)

    def _predict_alone(self, batch: list[tuple[list[str], Future]]) -> None:
        """Each request of a failed batch again on its own, so that only the one at fault gets the error."""
        for request_texts, future in batch:
            try:
                future.set_result(self._predict(request_texts))
            except Exception as error:  # noqa: BLE001 - this request's own failure
                future.set_exception(error)
