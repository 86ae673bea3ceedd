"""Progress lines for large downloads, on stderr: `label: 1.2 GiB / 3.4 GiB (35%)` every few seconds.

The clock is a parameter, so tests drive it without sleeping.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

LARGE = 8 << 20  # files at least this big get progress lines
INTERVAL = 5.0  # seconds between lines


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


class Progress:
    def __init__(self, label: str, total: Optional[int], *, stream: Optional[TextIO] = None,
                 interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic, large: int = LARGE):
        self.label, self.total, self.interval, self.clock = label, total, interval, clock
        self.stream = stream if stream is not None else sys.stderr
        self.shown = total is None or total >= large
        self.done_bytes = 0
        self._last = clock()

    def line(self) -> str:
        if not self.total:
            return f"{self.label}: {human(self.done_bytes)}"
        percent = int(self.done_bytes * 100 / self.total)
        return f"{self.label}: {human(self.done_bytes)} / {human(self.total)} ({percent}%)"

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)

    def start(self, offset: int = 0) -> None:
        self.done_bytes = offset
        if self.shown:
            self._print()
        self._last = self.clock()

    def update(self, count: int) -> None:
        self.done_bytes += count
        now = self.clock()
        if self.shown and now - self._last >= self.interval:
            self._print()
            self._last = now

    def finish(self) -> None:
        if self.shown:
            self._print()
