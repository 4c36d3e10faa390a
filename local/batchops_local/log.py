"""The stack's log: whole lines on stderr, from many threads at once."""

from __future__ import annotations

import sys
import threading

_LOCK = threading.Lock()


def stderr_line(line: str) -> None:
    """One write per line, under a lock: print() writes the text and the newline separately, and
    lines from the gateway, the pollers and the sandboxes ran into each other."""
    with _LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
