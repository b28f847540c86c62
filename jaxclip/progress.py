"""Progress on the console: tqdm bars on a terminal, a plain periodic line everywhere else.

A bar's carriage returns and cursor moves turn a log file (`python -m experiments.dissect
2> run.log`) into noise, so `bar(...)` draws a tqdm bar only when stderr is a terminal; otherwise
it prints one plain line (`encode shapes/test: 1200/2000 img (60%), 31 s`) every
`PLAIN_EVERY_S` seconds and one at the end when the work took that long.

`task(name)` shows that a long step is running even when it has no natural count: the runner
opens one per study and the studies name their parts with `step("jax_logistic 3/8")`; a
heartbeat redraws the elapsed time (terminal) or prints a plain line every `PLAIN_EVERY_S`
seconds. `TQDM_DISABLE=1` (tqdm's own switch) turns all of it off.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

# Seconds between two plain progress lines (no terminal); a step shorter than this prints none.
PLAIN_EVERY_S = 15.0

_lock = threading.Lock()
_current: list[Task] = []  # the open tasks, innermost last


def disabled() -> bool:
    """True when `TQDM_DISABLE` is set to a true value (tqdm's own switch)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


def is_terminal() -> bool:
    """True when stderr (where progress goes) is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def say(line: str) -> None:
    """Prints one plain progress line on stderr (the stream is looked up now, not at import)."""
    with _lock:
        print(line, file=sys.stderr, flush=True)


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s // 60:.0f} min {s % 60:02.0f} s"


class PlainBar:
    """tqdm's interface (`update`, `set_postfix`, `close`, iteration), drawn as plain lines."""

    def __init__(
        self,
        iterable: Any = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        every_s: float | None = None,
    ):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.every_s = PLAIN_EVERY_S if every_s is None else every_s
        self.postfix = ""
        self.t0 = self.last = time.perf_counter()
        self.printed = False
        self.closed = False

    def line(self, now: float) -> str:
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = self.n / max(now - self.t0, 1e-9)
        post = f", {self.postfix}" if self.postfix else ""
        return (
            f"{self.desc}: {count} {self.unit}{pct}, {_seconds(now - self.t0)}, "
            f"{rate:.3g} {self.unit}/s{post}"
        )

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            self.printed = True
            say(self.line(now))

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        del refresh
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        del refresh
        self.postfix = s

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = time.perf_counter()
        if self.printed or now - self.t0 >= self.every_s:
            say(self.line(now) + " (done)")

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _NoBar(PlainBar):
    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


def bar(iterable: Any = None, *, disable: bool = False, **kwargs: Any) -> Any:
    """A progress bar with tqdm's interface: tqdm on a terminal, else a `PlainBar`.

    Args:
      iterable: optional, iterated over as by tqdm.
      disable: no output at all (e.g. on processes other than 0).
      kwargs: tqdm's `total`, `desc`, `unit`, `initial` (others are passed to tqdm only).
    """
    if disable or disabled():
        return _NoBar(iterable, **_plain_kwargs(kwargs))
    if is_terminal():
        from tqdm import tqdm

        return tqdm(iterable, dynamic_ncols=True, **kwargs)
    return PlainBar(iterable, **_plain_kwargs(kwargs))


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("total", "desc", "unit", "initial")
    return {k: kwargs[k] for k in keys if k in kwargs}


class Task:
    """A long step without a natural count: its name, elapsed time and current part, redrawn
    by a heartbeat thread (see the module docstring). Use `with task(name):`."""

    def __init__(self, name: str, every_s: float | None = None):
        self.name = name
        self.note = ""
        self.every_s = PLAIN_EVERY_S if every_s is None else every_s
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self._tty = not disabled() and is_terminal()
        self._quiet = disabled()
        self._bar: Any = None
        self._thread: threading.Thread | None = None
        self.printed = False

    def line(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.name}: running, {_seconds(time.perf_counter() - self.t0)}{note}"

    def _beat(self) -> None:
        interval = 1.0 if self._tty else max(self.every_s, 0.05)
        while not self._stop.wait(interval):
            if self._tty:
                self._bar.set_postfix_str(self.note, refresh=True)
            else:
                self.printed = True
                say(self.line())

    def __enter__(self) -> Task:
        with _lock:
            _current.append(self)
        if self._quiet:
            return self
        if self._tty:
            from tqdm import tqdm

            self._bar = tqdm(total=None, desc=self.name, bar_format="{desc}: {elapsed}{postfix}")
        self._thread = threading.Thread(target=self._beat, name=f"progress {self.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with _lock:
            if self in _current:
                _current.remove(self)
        if self._bar is not None:
            self._bar.close()
        elapsed = time.perf_counter() - self.t0
        if not self._quiet and not self._tty and (self.printed or elapsed >= self.every_s):
            say(f"{self.name}: done in {_seconds(elapsed)}")


def task(name: str, every_s: float | None = None) -> Task:
    """A `Task` to use as a context manager: `with progress.task("probe"): ...`."""
    return Task(name, every_s)


def step(note: str) -> None:
    """Names the part of the innermost open task now running (no-op outside a task)."""
    with _lock:
        if _current:
            _current[-1].note = note
