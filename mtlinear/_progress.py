"""Progress reports for long paths and cross-validations.

``verbose=0`` is silent.  ``verbose >= 1`` draws a bar (rewritten in place
with carriage returns) when stderr is a terminal, and otherwise prints a line
each time another tenth of the work is done, so log files stay short.
``verbose >= 2`` also prints one line per solved alpha.
"""
import sys
import time

__all__ = ["Progress"]

_BAR_WIDTH = 30


class Progress:
    """Count ``total`` units of work and report on stderr.

    Parameters
    ----------
    total : int
        Number of units (alphas times folds, for instance).
    verbose : int
    label : str
        What is being counted, shown before the bar.
    stream : file-like, optional
        Default ``sys.stderr``.
    """

    def __init__(self, total, verbose, label, stream=None):
        self.total = max(int(total), 1)
        self.verbose = int(verbose)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._start = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = 0

    def detail(self, message):
        """A line of detail (shown from ``verbose >= 2``)."""
        if self.verbose >= 2:
            self._write(f"[mtlinear] {message}\n", clear=True)

    def update(self, n=1):
        """``n`` more units are done."""
        if self.verbose <= 0:
            return
        self.done = min(self.done + n, self.total)
        elapsed = time.perf_counter() - self._start
        if self._tty:
            filled = _BAR_WIDTH * self.done // self.total
            bar = "#" * filled + "." * (_BAR_WIDTH - filled)
            self._write(f"\r[mtlinear] {self.label} [{bar}] {self.done}/"
                        f"{self.total} {elapsed:.1f}s")
            if self.done == self.total:
                self._write("\n")
            return
        tenth = 10 * self.done // self.total
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self._write(f"[mtlinear] {self.label}: {self.done}/{self.total} "
                        f"({100 * self.done // self.total}%) {elapsed:.1f}s\n")

    def _write(self, text, clear=False):
        if clear and self._tty and 0 < self.done < self.total:
            text = "\r" + " " * (_BAR_WIDTH + len(self.label) + 40) + "\r" + text
        self.stream.write(text)
        self.stream.flush()
