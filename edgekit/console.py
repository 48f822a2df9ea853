"""What edgekit shows while it works: stdlib logging under the `edgekit` logger, one progress facility, and the
capture of third-party output (their loggers, `warnings`, native stdout/stderr) into a run folder's run.log.

An `output(log)` session decides where edgekit's lines go: the terminal (`log=True`), a callable that receives
each line, or nowhere (`None`/`False`). `run_log(folder)` sends everything else to FOLDER/run.log meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, Union

from edgekit.timing import Stopwatch

LOGGER = "edgekit"
LogTarget = Union[bool, None, Callable[[str], None]]

_settings = {"verbosity": 0}  # -1 quiet (errors only), 0 normal, 1 verbose (debug lines, third-party warnings)
_terminal: dict[int, TextIO] = {}  # the real stdout/stderr while fds 1 and 2 are sent to a run.log
_live: dict[str, Any] = {}  # the shared rich Progress of the terminal bars, while one is shown


def logger(name: str = "") -> logging.Logger:
    """The `edgekit` logger, or its child `edgekit.NAME`."""
    return logging.getLogger(f"{LOGGER}.{name}" if name else LOGGER)


def set_verbosity(level: int) -> None:
    """-1: only errors reach the terminal (no bars); 0: progress and results; 1: also debug lines and third-party
    warnings. Every line still reaches run.log."""
    _settings["verbosity"] = max(-1, min(1, level))


def quiet() -> bool:
    """--quiet: only errors are printed."""
    return _settings["verbosity"] < 0


def terminal_stream(fd: int = 2) -> TextIO:
    """Where terminal output goes now: the real stdout (1) or stderr (2), even while a run.log captures them."""
    return _terminal.get(fd) or (sys.stdout if fd == 1 else sys.stderr)


class _TerminalFile:
    """A file for rich that always writes to the current terminal stderr."""

    def write(self, text: str) -> int:
        return terminal_stream().write(text)

    def flush(self) -> None:
        terminal_stream().flush()

    def isatty(self) -> bool:
        return _isatty(terminal_stream())

    def fileno(self) -> int:
        return terminal_stream().fileno()

    @property
    def encoding(self) -> str:
        return getattr(terminal_stream(), "encoding", None) or "utf-8"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _console():
    from rich.console import Console

    if "progress" in _live:
        return _live["progress"].console
    return Console(file=_TerminalFile(), highlight=False, markup=False, emoji=False, soft_wrap=True)


class _TerminalHandler(logging.Handler):
    """edgekit's lines on stderr: plain text, above the progress bars when some are shown."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            if record.levelno >= logging.WARNING and not record.name.startswith(LOGGER):
                msg = f"{record.levelname.lower()}: {record.name}: {msg}"
            if "progress" in _live:
                _live["progress"].console.print(msg, markup=False, highlight=False, soft_wrap=True,
                                                style="red" if record.levelno >= logging.ERROR else None)
            else:
                stream = terminal_stream()
                stream.write(msg + "\n")
                stream.flush()
        except Exception:  # a closed or broken terminal must not stop the run
            self.handleError(record)


class _CallableHandler(logging.Handler):
    """edgekit's lines handed to a callable, which prints to the real terminal even while a run.log captures it."""

    def __init__(self, fn: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.fn = fn

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.redirect_stdout(terminal_stream(1)), contextlib.redirect_stderr(terminal_stream(2)):
            self.fn(self.format(record))


def _terminal_level() -> int:
    return {-1: logging.ERROR, 0: logging.INFO, 1: logging.DEBUG}[_settings["verbosity"]]


def _mode() -> str:
    return _settings.get("mode", "silent")  # outside a session (the pipeline called directly): no bars


@contextlib.contextmanager
def output(log: LogTarget = True) -> Iterator[None]:
    """Send edgekit's lines to the terminal (True), to `log` (a callable: nothing reaches the terminal, no bars)
    or nowhere (None/False) for the duration. Sessions nest; the innermost decides."""
    ek = logger()
    saved = (ek.handlers[:], ek.level, ek.propagate, _settings.get("mode"))
    if log is True:
        handler: logging.Handler | None = _TerminalHandler(_terminal_level())
        mode = "terminal"
    elif callable(log):
        handler, mode = _CallableHandler(log), "callable"
    else:
        handler, mode = None, "silent"
    ek.handlers = [h for h in ek.handlers if isinstance(h, logging.FileHandler)] + ([handler] if handler else [])
    ek.setLevel(logging.DEBUG)
    ek.propagate = False
    _settings["mode"] = mode
    try:
        yield
    finally:
        ek.handlers, ek.level, ek.propagate = saved[0], saved[1], saved[2]
        if saved[3] is None:
            _settings.pop("mode", None)
        else:
            _settings["mode"] = saved[3]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    logging.getLogger("py.warnings").warning("%s", text)


@contextlib.contextmanager
def run_log(folder: Path) -> Iterator[Path]:
    """Everything not edgekit's own (third-party loggers, `warnings.warn`, native output on fds 1 and 2) goes to
    FOLDER/run.log for the duration, with edgekit's lines, instead of the terminal."""
    path = Path(folder) / "run.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root, ek = logging.getLogger(), logger()
    shown = None
    if _mode() == "terminal" and _settings["verbosity"] > 0:  # --verbose: third-party warnings on the terminal too
        shown = _TerminalHandler(logging.WARNING)
        root.addHandler(shown)
    root.addHandler(handler)
    ek.addHandler(handler)
    try:
        with warnings.catch_warnings(), _fds_to(path):
            warnings.showwarning = _show_warning
            yield path
    finally:
        for h in (handler, shown):
            if h is not None:
                root.removeHandler(h)
        ek.removeHandler(handler)
        handler.close()


def _flush_std() -> None:
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()


def _open_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _fds_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `path` (append); the outermost call keeps the real ones for the terminal."""
    fds = [fd for fd in (1, 2) if _open_fd(fd)]
    _flush_std()
    saved = {fd: os.dup(fd) for fd in fds}
    outermost = not _terminal
    if outermost:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            try:
                writes_fd = stream.fileno() == fd
            except (AttributeError, ValueError, OSError):
                writes_fd = False
            if writes_fd and fd in saved:  # else the stream does not write to the descriptor: it stays as it is
                _terminal[fd] = os.fdopen(os.dup(saved[fd]), "w", buffering=1,
                                          encoding=getattr(stream, "encoding", None) or "utf-8", errors="replace")
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        for fd in fds:
            os.dup2(target, fd)
    finally:
        os.close(target)
    try:
        yield
    finally:
        _flush_std()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        if outermost:
            for stream in _terminal.values():
                with contextlib.suppress(Exception):
                    stream.close()
            _terminal.clear()


def duration(seconds: float) -> str:
    """12 s, 2 min, 1 h 5 min."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def bars_shown() -> bool:
    """Progress is drawn as bars: terminal output, not --quiet, and stderr is a terminal."""
    return (_mode() == "terminal" and _settings["verbosity"] >= 0 and _isatty(terminal_stream())
            and os.environ.get("TERM") != "dumb")


class Progress:
    """Progress of `total` steps called `label` (epoch, trial, candidate ...): a bar with elapsed time and ETA on a
    terminal, else a plain log line every fifth of the way (and at least every `every_s` seconds).
    `log` (default: the `edgekit.progress` logger) receives the lines; a callable other than a logger's method
    never gets a bar."""

    def __init__(self, label: str, total: int, log: Callable[[str], None] | None = None, every_s: float = 30.0):
        self.label, self.total, self.done = label, max(int(total), 0), 0
        self.clock, self._last = Stopwatch(), 0.0
        self.every_s, self.note = every_s, ""
        to_logger = log is None or isinstance(getattr(log, "__self__", None), logging.Logger)
        self.log = log or logger("progress").info
        self._step = max(1, self.total // 5)
        self._task = None
        if to_logger and bars_shown() and self.total:
            self._task = _add_bar(label, self.total)

    def eta(self) -> float | None:
        return self.clock.eta_s(self.done, self.total) if self.total else None

    def line(self) -> str:
        elapsed = self.clock.seconds
        if self.done >= self.total:
            head = f"  {self.label} {self.done}/{self.total} in {duration(elapsed)}"
        else:
            eta = self.eta()
            head = f"  {self.label} {self.done}/{self.total}, " + (f"ETA {duration(eta)}" if eta is not None else
                                                                  f"{duration(elapsed)} elapsed")
        return head + (f": {self.note}" if self.note else "")

    def update(self, done: int | None = None, note: str = "") -> None:
        """Mark `done` steps finished (default: one more); `note` is shown beside the count."""
        self.done = self.done + 1 if done is None else int(done)
        self.note = note
        if self._task is not None:
            _live["progress"].update(self._task, completed=self.done, note=note)
            return
        now = self.clock.seconds
        if self.done % self._step == 0 or self.done >= self.total or now - self._last >= self.every_s:
            self._last = now
            self.log(self.line())

    def close(self) -> None:
        if self._task is not None:
            _remove_bar(self._task)
            self._task = None
            if self.done:
                self.log(self.line())


@contextlib.contextmanager
def progress(label: str, total: int, log: Callable[[str], None] | None = None) -> Iterator[Progress]:
    """`with progress("epoch", 20) as p: ... p.update(note="loss 0.1")`. Lines go to `log` when given; a bar is drawn
    instead only when they would go to a logger and the session shows bars."""
    p = Progress(label, total, log)
    try:
        yield p
    finally:
        p.close()


def _add_bar(label: str, total: int):
    if "progress" not in _live:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        bar = RichProgress(TextColumn("  {task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                           TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                           TextColumn("{task.fields[note]}"), console=_console(), transient=True,
                           redirect_stdout=False, redirect_stderr=False, refresh_per_second=4)
        bar.start()
        _live["progress"] = bar
    return _live["progress"].add_task(label, total=total, note="")


def _remove_bar(task) -> None:
    bar = _live.get("progress")
    if bar is None:
        return
    bar.remove_task(task)
    if not bar.tasks:
        bar.stop()
        _live.pop("progress", None)
