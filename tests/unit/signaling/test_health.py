from __future__ import annotations

import pytest

from yunting.signaling.health import classify
from yunting.signaling.messages import HealthLevel


@pytest.mark.parametrize(
    ("loss", "level"),
    [
        (0.0, HealthLevel.GOOD),
        (9.99, HealthLevel.GOOD),
        (10.0, HealthLevel.POOR),  # HMCTS: poor from 10 %
        (14.99, HealthLevel.POOR),
        (15.0, HealthLevel.BAD),  # bad from 15 %
        (100.0, HealthLevel.BAD),
    ],
)
def test_hmcts_thresholds(loss: float, level: HealthLevel) -> None:
    assert classify(loss) is level
