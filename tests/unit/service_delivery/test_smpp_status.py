"""The SMPP status tables: what a submit_sm_resp status and a receipt mean for an attempt."""

from __future__ import annotations

import pytest

from yunting.service_delivery.ports import FailureKind, ReceiptStatus
from yunting.service_delivery.providers.smpp_pdu import CommandStatus, MessageState
from yunting.service_delivery.providers.smpp_status import (
    COMMAND_STATUS,
    MESSAGE_STATE,
    RECEIPT_STAT,
    command_status_meaning,
    receipt_status,
)


def test_every_spec_status_has_a_meaning() -> None:
    assert set(COMMAND_STATUS) == {int(code) for code in CommandStatus}
    for code in CommandStatus:
        assert COMMAND_STATUS[code].name == code.name


@pytest.mark.parametrize(
    ("code", "kind", "slow_down"),
    [
        (CommandStatus.ESME_ROK, None, False),
        # Only "this number is no good" is permanent: it makes the service fall back.
        (CommandStatus.ESME_RINVDSTADR, FailureKind.PERMANENT, False),
        (CommandStatus.ESME_RTHROTTLED, FailureKind.TEMPORARY, True),
        (CommandStatus.ESME_RMSGQFUL, FailureKind.TEMPORARY, True),
        (CommandStatus.ESME_RX_T_APPN, FailureKind.TEMPORARY, False),
        (CommandStatus.ESME_RSYSERR, FailureKind.TECHNICAL, False),
        (CommandStatus.ESME_RSUBMITFAIL, FailureKind.TECHNICAL, False),
        (CommandStatus.ESME_RBINDFAIL, FailureKind.TECHNICAL, False),
        (CommandStatus.ESME_RINVPASWD, FailureKind.TECHNICAL, False),
        (CommandStatus.ESME_RINVSRCADR, FailureKind.TECHNICAL, False),
        (CommandStatus.ESME_RINVMSGLEN, FailureKind.TECHNICAL, False),
    ],
)
def test_command_status_meanings(code: int, kind: FailureKind | None, slow_down: bool) -> None:
    meaning = command_status_meaning(code)
    assert (meaning.kind, meaning.slow_down) == (kind, slow_down)


def test_only_throttling_statuses_slow_down() -> None:
    slowing = {code for code, meaning in COMMAND_STATUS.items() if meaning.slow_down}
    assert slowing == {CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL}


@pytest.mark.parametrize("code", [0x00000009, 0x00000400, 0x000004FF, 0xDEADBEEF])
def test_unknown_statuses_are_technical_and_named_by_hex(code: int) -> None:
    meaning = command_status_meaning(code)
    assert meaning.kind is FailureKind.TECHNICAL
    assert not meaning.slow_down
    assert meaning.name == f"0x{code:08X}"


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", ReceiptStatus.DELIVERED),
        ("delivrd", ReceiptStatus.DELIVERED),
        (" DELIVERED ", ReceiptStatus.DELIVERED),
        ("EXPIRED", ReceiptStatus.TEMPORARY_FAILURE),
        ("DELETED", ReceiptStatus.TEMPORARY_FAILURE),
        ("UNKNOWN", ReceiptStatus.TEMPORARY_FAILURE),
        ("UNDELIV", ReceiptStatus.PERMANENT_FAILURE),
        ("REJECTD", ReceiptStatus.PERMANENT_FAILURE),
        ("ACCEPTD", ReceiptStatus.ACCEPTED),
        ("ENROUTE", ReceiptStatus.ACCEPTED),
        # Unknown or missing words are kept as evidence and move nothing.
        ("SKIPPED", ReceiptStatus.ACCEPTED),
        ("", ReceiptStatus.ACCEPTED),
    ],
)
def test_receipt_stat_words(stat: str, status: ReceiptStatus) -> None:
    assert receipt_status(message_state=None, stat=stat) is status


def test_every_message_state_has_a_meaning_that_agrees_with_its_word() -> None:
    assert set(MESSAGE_STATE) == {int(s) for s in MessageState}
    words = {
        MessageState.ENROUTE: "ENROUTE",
        MessageState.DELIVERED: "DELIVRD",
        MessageState.EXPIRED: "EXPIRED",
        MessageState.DELETED: "DELETED",
        MessageState.UNDELIVERABLE: "UNDELIV",
        MessageState.ACCEPTED: "ACCEPTD",
        MessageState.UNKNOWN: "UNKNOWN",
        MessageState.REJECTED: "REJECTD",
    }
    for state, word in words.items():
        assert MESSAGE_STATE[state] is RECEIPT_STAT[word], word


def test_the_message_state_tlv_wins_over_the_word_unless_unknown() -> None:
    assert (
        receipt_status(message_state=MessageState.UNDELIVERABLE, stat="DELIVRD")
        is ReceiptStatus.PERMANENT_FAILURE
    )
    assert receipt_status(message_state=99, stat="DELIVRD") is ReceiptStatus.DELIVERED
    assert receipt_status(message_state=99, stat="") is ReceiptStatus.ACCEPTED
