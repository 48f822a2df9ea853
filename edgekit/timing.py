"""The one timing primitive: durations and interleaved latency blocks."""

from __future__ import annotations

import time


class Stopwatch:
    """Elapsed seconds since start; a context manager that stops on exit."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._stop: float | None = None

    def __enter__(self) -> Stopwatch:
        self._start, self._stop = time.perf_counter(), None
        return self

    def __exit__(self, *exc) -> None:
        self._stop = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self._stop if self._stop is not None else time.perf_counter()) - self._start
