"""The one place edgekit reads the clock: a stopwatch for durations, and an interleaved block timer for latencies.

Stdlib only: the bench agent ships this file to devices beside itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping


def now() -> float:
    """Seconds on a monotonic clock, for deadlines (`now() + budget`); durations use `Stopwatch`."""
    return time.perf_counter()


class Stopwatch:
    """Seconds since it was made (or restarted); as a context manager it stops on exit.

    `with Stopwatch() as sw: work()` then `sw.seconds`; or `sw = Stopwatch()` ... `sw.seconds` read while running."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> Stopwatch:
        self._start, self._stop = time.perf_counter(), None
        return self

    def stop(self) -> float:
        self._stop = time.perf_counter()
        return self.seconds

    def __enter__(self) -> Stopwatch:
        return self.restart()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def seconds(self) -> float:
        return (self._stop if self._stop is not None else time.perf_counter()) - self._start

    @property
    def ms(self) -> float:
        return self.seconds * 1e3

    def eta_s(self, done: int, total: int) -> float | None:
        """Seconds left if the remaining `total - done` units take as long as the done ones did."""
        return self.seconds / done * (total - done) if done else None


def time_call(fn: Callable[[], object]) -> float:
    """Milliseconds one call of `fn` took."""
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def interleave(fns: Mapping[str, Callable[[], object]], *, block: int = 1, warmup: int = 0, min_rounds: int = 1,
               min_samples: int = 0, min_time_s: float = 0.0, max_time_s: float = math.inf,
               max_rounds: int | None = None, after_each: Callable[[str], object] | None = None) -> dict[str, list[float]]:
    """Latency samples (ms) of each callable, timed side by side so a slow spell of the machine hits all alike.

    Each callable first runs `warmup` times untimed. Then rounds: in each, every callable runs `block` timed calls in
    turn, the order reversed every other round (A B, B A, A B ...: neither always runs right after the other). Rounds
    go on until at least `min_rounds` rounds, `min_samples` samples per callable and `min_time_s` seconds are done,
    and stop early at `max_time_s` seconds or `max_rounds` rounds (each checked after a whole round, so every
    callable has the same count: sample i of each belongs to round i // block). `after_each(name)` runs untimed
    after each timed call (a device-side time, a canary). Blocks rather than single runs suit many runtime sessions
    in one process: a session's threads spin for a while after it runs."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    start, rounds = time.perf_counter(), 0
    while True:
        for name in names if rounds % 2 == 0 else names[::-1]:
            fn, out = fns[name], samples[name]
            for _ in range(block):
                t0 = time.perf_counter_ns()
                fn()
                out.append((time.perf_counter_ns() - t0) / 1e6)
                if after_each is not None:
                    after_each(name)
        rounds += 1
        elapsed = time.perf_counter() - start
        enough = rounds >= min_rounds and rounds * block >= min_samples and elapsed >= min_time_s
        if enough or elapsed >= max_time_s or (max_rounds is not None and rounds >= max_rounds):
            return samples
