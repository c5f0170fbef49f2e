"""Process-wide runtime tuning for the long-running commands (``yunting serve``, ``yunting
worker``) and the benchmarks that measure them, so both run the same way."""

from __future__ import annotations

import gc

# CPython 3.11 runs a young-generation collection every 700 net allocations of tracked
# objects. A delivery batch allocates tens of thousands of short-lived rows, events and
# dicts, nearly all freed by reference counting, so most of those collections find nothing:
# bench/delivery.py measured them at ~5% of the event loop's CPU per mail, and 10,000 gave
# 5-10% more mails per second. The older generations keep their default ratios, so cyclic
# garbage is still found within a few batches.
GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Call once, after start-up imports and before serving: what was allocated so far (the
    modules, the app, the settings) lives as long as the process, so it is moved out of the
    collector's sight (``gc.freeze``) and no full collection walks it again; then the young
    generation is collected less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
