"""What a device check writes to the attendance log: devices_ok or the first problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from yunting.signaling.outputs import AttendanceReason as R
from yunting.web.routes.join import device_check_result
from yunting.web.schemas import DeviceCheck


@pytest.mark.parametrize(
    ("camera", "microphone", "speaker", "expected"),
    [
        ("ok", "ok", "ok", R.DEVICES_OK),
        ("ok", "ok", "not_tested", R.DEVICES_OK),
        ("denied", "ok", "ok", R.CAMERA_DENIED),
        ("ok", "denied", "ok", R.MICROPHONE_DENIED),
        ("missing", "ok", "ok", R.CAMERA_MISSING),
        ("ok", "missing", "ok", R.MICROPHONE_MISSING),
        ("error", "ok", "ok", R.DEVICE_ERROR),
        ("ok", "error", "ok", R.DEVICE_ERROR),
        ("ok", "ok", "failed", R.SPEAKER_FAILED),
        # A refusal the person can undo comes before a missing device, and so on down.
        ("missing", "denied", "ok", R.MICROPHONE_DENIED),
        ("error", "missing", "failed", R.MICROPHONE_MISSING),
        ("error", "error", "failed", R.DEVICE_ERROR),
        ("denied", "denied", "failed", R.CAMERA_DENIED),
    ],
)
def test_first_problem_wins(camera: str, microphone: str, speaker: str, expected: R) -> None:
    check = DeviceCheck.model_validate(
        {"camera": camera, "microphone": microphone, "speaker": speaker}
    )
    assert device_check_result(check) is expected


def test_speaker_results_are_not_device_results() -> None:
    with pytest.raises(ValidationError):
        DeviceCheck.model_validate({"camera": "ok", "microphone": "ok", "speaker": "missing"})
    with pytest.raises(ValidationError):
        DeviceCheck.model_validate({"camera": "failed", "microphone": "ok", "speaker": "ok"})
