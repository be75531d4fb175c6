"""Merging the texts of concurrent requests into model batches, fairly, on the one thread that runs the model."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger("albert_ner.serving")


class DeadlineExceeded(Exception):
    """A request's deadline passed before all its texts went through the model; the rest were dropped."""

    def __init__(self, done: int, total: int):
        super().__init__(f"{done} of its {total} texts were tagged before the deadline")
        self.done, self.total = done, total


class BatcherClosed(Exception):
    """The batcher was closed (its model replaced) and its thread has ended: submit to the new one."""


class Submission:
    """One submitted request: its texts, how far the model has got, and the future of its results."""

    def __init__(self, batcher: DynamicBatcher, texts: list[str], deadline: float | None):
        self._batcher = batcher
        self.texts = texts
        self.deadline = deadline
        self.taken = 0  # texts handed to model batches so far
        self.done = 0  # texts with results
        self.results: list[Any] = [None] * len(texts)
        self.future: Future = Future()

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def result(self, timeout: float | None = None) -> list[Any]:
        """The results in order; at the deadline (or after ``timeout``) :class:`DeadlineExceeded`, without
        waiting for a model batch that is running, and the texts not yet in one are dropped."""
        if self.deadline is not None:
            left = max(0.0, self.deadline - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        try:
            return self.future.result(timeout)
        except FutureTimeout:
            self._batcher.fail(self, DeadlineExceeded(self.done, len(self.texts)))
            return self.future.result(0)  # its last batch may have finished in between


class DynamicBatcher:
    """Merges the texts of concurrent requests into model batches of at most ``max_batch_size`` texts.

    A batch starts when a request is waiting and takes more for up to ``max_delay``, until it is full.
    Every waiting request gets an equal share of each batch (:meth:`_share_out`), so a request of 100,000
    texts is cut into model batches that interleave with everyone else's, and a short request behind it
    waits about one batch, not the whole request. ``predict`` runs on one thread, the only one that touches the model.

    A request past its deadline loses its remaining texts (its future gets :class:`DeadlineExceeded`),
    and so does one whose caller gave up waiting (:meth:`predict`'s timeout): no work goes on for a client
    that has gone.
    """

    def __init__(self, predict: Callable[[list[str]], list[Any]], max_batch_size: int = 64,
                 max_delay: float = 0.005):
        self._predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay = max_delay
        self._waiting: deque[Submission] = deque()
        self._condition = threading.Condition()
        self.batches = 0
        self._closed = False  # no more submissions expected: the thread ends once the line is empty
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="dynamic-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str], deadline: float | None = None) -> Submission:
        """Queue ``texts``; past ``deadline`` (a ``time.monotonic()`` value) the texts not yet in a model
        batch are dropped."""
        submission = Submission(self, list(texts), deadline)
        if not submission.texts:
            submission.future.set_result([])
            return submission
        with self._condition:
            if self._ended:
                raise BatcherClosed("this batcher's model was replaced")
            self._waiting.append(submission)
            self._condition.notify()
        return submission

    def close(self) -> None:
        """Finish the requests in line (a submission that still comes before the line is empty joins it),
        then end the thread and let go of the model; a submission after that raises :class:`BatcherClosed`.
        For replacing the model without dropping a request."""
        with self._condition:
            self._closed = True
            self._condition.notify()

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        """The results of ``texts``, or :class:`DeadlineExceeded` after ``timeout`` seconds."""
        return self.submit(texts, None if timeout is None else time.monotonic() + timeout).result()

    def _take_batch(self) -> list[tuple[Submission, int, int]] | None:
        """The next model batch: ``(request, start, stop)`` slices of the waiting requests' texts; None once
        closed with no request left."""
        with self._condition:
            while True:
                while not self._waiting:
                    if self._closed:
                        self._ended = True
                        return None
                    self._condition.wait()
                started = time.monotonic()
                while self._waiting and sum(len(request.texts) - request.taken for request in self._waiting
                                            ) < self.max_batch_size:
                    remaining = started + self.max_delay - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                self._drop_expired(time.monotonic())
                if not self._waiting:
                    continue
                return self._share_out()

    def _share_out(self) -> list[tuple[Submission, int, int]]:
        """Cut the next batch from the waiting requests: each first gets an equal share of the batch (a
        short request behind a long one goes in at once), then the room left goes to them in line order;
        a request with texts left keeps its place in the line."""
        line = list(self._waiting)
        starts = [request.taken for request in line]
        room = self.max_batch_size
        share = -(-room // len(line))
        for limit in (share, room):
            for request in line:
                take = min(len(request.texts) - request.taken, limit, room)
                request.taken += take
                room -= take
        self._waiting = deque(request for request in line if request.taken < len(request.texts))
        return [(request, start, request.taken) for request, start in zip(line, starts, strict=True)
                if request.taken > start]

    def _drop_expired(self, now: float) -> None:
        for request in [request for request in self._waiting if request.expired(now)]:
            log.warning("a request of %d texts passed its deadline after %d of them; the rest are dropped",
                        len(request.texts), request.done)
            self.fail(request, DeadlineExceeded(request.done, len(request.texts)))

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            texts = [text for request, start, stop in batch for text in request.texts[start:stop]]
            try:
                results = self._predict(texts)
            except Exception as error:  # noqa: BLE001 - the request at fault gets the error; the thread goes on
                log.exception("prediction failed for a batch of %d texts from %d request(s)", len(texts), len(batch))
                if len(batch) == 1:
                    self.fail(batch[0][0], error)
                else:
                    self._predict_alone(batch)
                continue
            self.batches += 1
            position = 0
            for request, start, stop in batch:
                self._deliver(request, start, results[position:position + stop - start])
                position += stop - start

    def _predict_alone(self, batch: list[tuple[Submission, int, int]]) -> None:
        """Each request's part of a failed batch again on its own, so that only the one at fault gets the error."""
        for request, start, stop in batch:
            try:
                results = self._predict(request.texts[start:stop])
            except Exception as error:  # noqa: BLE001 - this request's own failure
                self.fail(request, error)
            else:
                self._deliver(request, start, results)

    def _deliver(self, request: Submission, start: int, results: list[Any]) -> None:
        with self._condition:  # against a caller failing it at its deadline (fail)
            request.results[start:start + len(results)] = results
            request.done += len(results)
            if request.done == len(request.texts) and not request.future.done():
                request.future.set_result(request.results)

    def fail(self, request: Submission, error: Exception) -> None:
        """End ``request`` with ``error``: its texts still waiting are dropped."""
        with self._condition:
            if request in self._waiting:
                self._waiting.remove(request)
            if not request.future.done():
                request.future.set_exception(error)
