"""The cyclic garbage collector around the big, long-lived structures the daemon builds.

A full (generation-2) collection holds the GIL while it scans every tracked object outside
the permanent generation, so it stalls the event loop for as long as it runs, whichever thread
set it off. Compiling ~1,500 policies creates a few hundred thousand tracked objects (parsed
YAML, patterns, rules, plans), and the full passes over them while a reload compiled stalled
the loop for 0.1-0.3 s. So a reload defers full passes until the new set is in force, then
freezes it (as start-up freezes what it built): no later pass scans it again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Generation 2 is collected after this many generation-1 passes: far more than any build runs.
DEFERRED = 1 << 30


@contextlib.contextmanager
def full_passes_deferred() -> Iterator[None]:
    """No automatic full collection starts in the block; the young generations still do."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, DEFERRED)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def keep_out_of_full_passes() -> None:
    """Move every tracked object into the permanent generation, which full passes skip.

    Frozen objects are still freed by reference counting, never by the collector: what is
    frozen must not form reference cycles once it is dropped (a replaced PolicySet has none).
    The young generations are collected first, so fresh cyclic garbage is not frozen with it.
    """
    gc.collect(1)
    gc.freeze()
