"""The collector tuning ``yunting serve`` and ``yunting worker`` apply, in a child process:
it is process-wide, and the test run's own collector must stay as it is."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import gc, json, weakref
from yunting.infra.runtime import GEN0_THRESHOLD, tune_gc

class Node:
    pass

before = gc.get_threshold()
tune_gc()
frozen = gc.get_freeze_count()
# Cyclic garbage made after tuning is still collected: by the automatic collections, without
# an explicit gc.collect().
refs = []
for _ in range(3 * GEN0_THRESHOLD):
    a, b = Node(), Node()
    a.other, b.other = b, a
    refs.append(weakref.ref(a))
    del a, b
alive = sum(1 for r in refs if r() is not None)
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": frozen,
                  "alive": alive, "made": len(refs), "gen0": GEN0_THRESHOLD}))
"""


def test_tune_gc_freezes_start_up_objects_and_collects_the_young_generation_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    result = json.loads(out)
    assert result["after"] == [result["gen0"], result["before"][1], result["before"][2]]
    assert result["gen0"] > result["before"][0]
    assert result["frozen"] > 1000  # the imported modules' objects
    # The automatic collections still ran: at most the last young generation's worth of
    # cycles (fewer than the threshold) is waiting for the next one.
    assert result["alive"] < result["gen0"] < result["made"]
