"""Progress where a person watches, lines where a log is written.

tqdm sizes its bar to the terminal: ``os.get_terminal_size`` on the stream's file descriptor.
A terminal that reports 0 columns (a pty nobody set a size on: ``docker exec -t``, CI runners,
``script``, editor terminals at start-up) makes that width -1, and tqdm then draws *nothing*
— the bar appeared when stderr was a file (no size asked: a fixed-width bar) but not on such a
terminal. And in a file, tqdm's frames are ``\\r``-separated: one endless line in a log.

:func:`install` (called once by :func:`a3duck.logs.setup`) puts a thin stream in front of
``sys.stderr`` that fixes both for every bar of the process (a3duck's, the trainer's,
lm-eval's), without touching tqdm or the libraries:

- on a terminal that reports no width, the stream has no ``fileno``, so tqdm draws its
  fixed-width bar instead of an empty one;
- on anything that is not a terminal, each bar frame becomes a line of its own, at most one
  per bar every :data:`LOG_EVERY_S` seconds plus the first and the last frame.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time

LOG_EVERY_S = 10.0  # a log line per running bar at most this often (the last frame always)


def bar(iterable=None, **kwargs):
    """A tqdm bar on stderr (``tqdm.auto``: a widget in notebooks)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def install() -> None:
    """Put the right stream in front of ``sys.stderr`` (once per process)."""
    current = sys.stderr
    if current is None or isinstance(current, (SizelessTerminal, LogLines)):
        return
    if _isatty(current):
        if _columns(current) <= 0:
            sys.stderr = SizelessTerminal(current)
    else:
        sys.stderr = LogLines(current)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0


class _Proxy(io.TextIOBase):
    def __init__(self, target):
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return _isatty(self.target)

    @property
    def encoding(self):
        return getattr(self.target, "encoding", "utf-8")


class SizelessTerminal(_Proxy):
    """A terminal stream without ``fileno``: tqdm cannot ask its (zero) width."""


class LogLines(_Proxy):
    """A stream for logs: every ``\\r`` bar frame becomes a line (rate-limited per bar)."""

    def __init__(self, target, every_s: float = LOG_EVERY_S, clock=time.monotonic):
        super().__init__(target)
        self.every_s, self.clock = every_s, clock
        self.last: dict[str, tuple[float, str]] = {}  # bar description -> (time, frame)
        self.pending: dict[str, str] = {}  # last frame not written yet, per bar
        self.after_frame = False

    def fileno(self) -> int:
        return self.target.fileno()

    def write(self, text: str) -> int:
        if not text:
            return 0
        if "\r" not in text:
            if text == "\n" and self.after_frame:  # tqdm ending its bar: flush its last frame
                self._flush_pending()
                self.after_frame = False
                return len(text)
            self._flush_pending()
            self.after_frame = False
            return self.target.write(text)
        for frame in text.split("\r"):
            self._frame(frame.rstrip())
        return len(text)

    def _frame(self, frame: str) -> None:
        if not frame.strip():  # tqdm clearing its line (before a log line is written)
            return
        self.after_frame = True
        key = _bar_key(frame)
        seen = self.last.get(key)
        if seen and seen[1] == frame:
            return
        now = self.clock()
        if _finished(frame) or (seen is not None and now - seen[0] < self.every_s):
            self.pending[key] = frame  # the last one is written when the bar ends
            return
        self.pending.pop(key, None)
        self.last[key] = (now, frame)
        self.target.write(frame + "\n")

    def _flush_pending(self) -> None:
        for key, frame in self.pending.items():
            if self.last.get(key, (0, ""))[1] != frame:
                self.target.write(frame + "\n")
                self.last[key] = (self.clock(), frame)
        self.pending.clear()


BAR = re.compile(r"(.*?)(\d+%\||\d+(?:\.\d+)?\w*/?\w* \[)")


def _bar_key(frame: str) -> str:
    """Which bar a frame belongs to: its description (what comes before the count)."""
    match = BAR.match(frame)
    return (match.group(1) if match else frame).strip().rstrip(":")


def _finished(frame: str) -> bool:
    """A tqdm frame that shows its bar complete (``n/n``)."""
    done = re.search(r"\| *(\d+)/(\d+) ", frame)
    return bool(done) and done.group(1) == done.group(2)
