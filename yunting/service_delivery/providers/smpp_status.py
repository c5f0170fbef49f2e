"""What SMPP status codes mean for electronic service, kept as data tables (cf. GOV.UK Notify's
provider status maps): a submit_sm_resp command_status → a ``FailureKind`` and whether to slow
down; a delivery receipt's ``stat`` word or ``message_state`` number → a ``ReceiptStatus``.

Unknown values get a documented default instead of an exception: an unknown command_status is a
*technical* failure (retried and reported, never taken as a bad address); an unknown receipt
word or state is *accepted* (kept as evidence, moves no attempt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from yunting.service_delivery.ports import FailureKind, ReceiptStatus
from yunting.service_delivery.providers.smpp_pdu import CommandStatus, MessageState


@dataclass(frozen=True, slots=True)
class StatusMeaning:
    name: str
    kind: FailureKind | None  # None: success
    slow_down: bool = False  # the SMSC asks us to send less: pause, then retry the submission


_T, _P, _X = FailureKind.TEMPORARY, FailureKind.PERMANENT, FailureKind.TECHNICAL

# SMPP 3.4 §5.1.3. "Permanent" is kept for what says *this destination* is no good, since a
# permanent failure makes the service fall back to another channel; errors in what we sent or how
# we are bound are technical (our configuration or the SMSC is broken, not the address).
_COMMAND_STATUS: dict[CommandStatus, tuple[FailureKind | None, bool]] = {
    CommandStatus.ESME_ROK: (None, False),
    CommandStatus.ESME_RINVMSGLEN: (_X, False),
    CommandStatus.ESME_RINVCMDLEN: (_X, False),
    CommandStatus.ESME_RINVCMDID: (_X, False),
    CommandStatus.ESME_RINVBNDSTS: (_X, False),
    CommandStatus.ESME_RALYBND: (_X, False),
    CommandStatus.ESME_RINVPRTFLG: (_X, False),
    CommandStatus.ESME_RINVREGDLVFLG: (_X, False),
    CommandStatus.ESME_RSYSERR: (_X, False),
    CommandStatus.ESME_RINVSRCADR: (_X, False),
    CommandStatus.ESME_RINVDSTADR: (_P, False),
    CommandStatus.ESME_RINVMSGID: (_X, False),
    CommandStatus.ESME_RBINDFAIL: (_X, False),
    CommandStatus.ESME_RINVPASWD: (_X, False),
    CommandStatus.ESME_RINVSYSID: (_X, False),
    CommandStatus.ESME_RCANCELFAIL: (_X, False),
    CommandStatus.ESME_RREPLACEFAIL: (_X, False),
    # The SMSC's queue is full: the same message will be taken later.
    CommandStatus.ESME_RMSGQFUL: (_T, True),
    CommandStatus.ESME_RINVSERTYP: (_X, False),
    CommandStatus.ESME_RINVNUMDESTS: (_X, False),
    CommandStatus.ESME_RINVDLNAME: (_X, False),
    CommandStatus.ESME_RINVDESTFLAG: (_X, False),
    CommandStatus.ESME_RINVSUBREP: (_X, False),
    CommandStatus.ESME_RINVESMCLASS: (_X, False),
    CommandStatus.ESME_RCNTSUBDL: (_X, False),
    CommandStatus.ESME_RSUBMITFAIL: (_X, False),
    CommandStatus.ESME_RINVSRCTON: (_X, False),
    CommandStatus.ESME_RINVSRCNPI: (_X, False),
    # We set the destination TON/NPI from a validated E.164 number: a refusal is our mistake.
    CommandStatus.ESME_RINVDSTTON: (_X, False),
    CommandStatus.ESME_RINVDSTNPI: (_X, False),
    CommandStatus.ESME_RINVSYSTYP: (_X, False),
    CommandStatus.ESME_RINVREPFLAG: (_X, False),
    CommandStatus.ESME_RINVNUMMSGS: (_X, False),
    CommandStatus.ESME_RTHROTTLED: (_T, True),
    CommandStatus.ESME_RINVSCHED: (_X, False),
    CommandStatus.ESME_RINVEXPIRY: (_X, False),
    CommandStatus.ESME_RINVDFTMSGID: (_X, False),
    # §5.1.3: ESME receiver temporary / permanent / reject-message application errors. Between an
    # SMSC and a destination handset or application these speak about the destination.
    CommandStatus.ESME_RX_T_APPN: (_T, False),
    CommandStatus.ESME_RX_P_APPN: (_P, False),
    CommandStatus.ESME_RX_R_APPN: (_P, False),
    CommandStatus.ESME_RQUERYFAIL: (_X, False),
    CommandStatus.ESME_RINVOPTPARSTREAM: (_X, False),
    CommandStatus.ESME_ROPTPARNOTALLWD: (_X, False),
    CommandStatus.ESME_RINVPARLEN: (_X, False),
    CommandStatus.ESME_RMISSINGOPTPARAM: (_X, False),
    CommandStatus.ESME_RINVOPTPARAMVAL: (_X, False),
    CommandStatus.ESME_RDELIVERYFAILURE: (_T, False),
    CommandStatus.ESME_RUNKNOWNERR: (_X, False),
}

COMMAND_STATUS: Mapping[int, StatusMeaning] = MappingProxyType(
    {
        int(code): StatusMeaning(code.name, kind, slow_down)
        for code, (kind, slow_down) in _COMMAND_STATUS.items()
    }
)

# Statuses saying the credentials or the account are wrong: rebinding will not help until someone
# changes the configuration, so start() reports them instead of retrying quietly.
BIND_REFUSALS: frozenset[int] = frozenset(
    {
        CommandStatus.ESME_RINVPASWD,
        CommandStatus.ESME_RINVSYSID,
        CommandStatus.ESME_RBINDFAIL,
        CommandStatus.ESME_RINVSYSTYP,
    }
)


def command_status_meaning(code: int) -> StatusMeaning:
    """The meaning of a command_status (SMPP 3.4 §5.1.3). Unknown codes — including the
    0x400-0x4FF range reserved for SMSC vendors — are technical failures named by their hex."""
    meaning = COMMAND_STATUS.get(code)
    if meaning is None:
        return StatusMeaning(f"0x{code:08X}", FailureKind.TECHNICAL)
    return meaning


# Appendix B receipt "stat" words. EXPIRED/DELETED/UNKNOWN say the message did not arrive but not
# that the number is wrong, so they are temporary (retry or fall back later); UNDELIV and REJECTD
# are the network refusing this destination. Some SMSCs write the §5.2.28 state names in full.
RECEIPT_STAT: Mapping[str, ReceiptStatus] = MappingProxyType(
    {
        "DELIVRD": ReceiptStatus.DELIVERED,
        "DELIVERED": ReceiptStatus.DELIVERED,
        "EXPIRED": ReceiptStatus.TEMPORARY_FAILURE,
        "DELETED": ReceiptStatus.TEMPORARY_FAILURE,
        "UNKNOWN": ReceiptStatus.TEMPORARY_FAILURE,
        "UNDELIV": ReceiptStatus.PERMANENT_FAILURE,
        "UNDELIVERABLE": ReceiptStatus.PERMANENT_FAILURE,
        "REJECTD": ReceiptStatus.PERMANENT_FAILURE,
        "REJECTED": ReceiptStatus.PERMANENT_FAILURE,
        "ACCEPTD": ReceiptStatus.ACCEPTED,
        "ACCEPTED": ReceiptStatus.ACCEPTED,
        "ENROUTE": ReceiptStatus.ACCEPTED,
    }
)

# §5.2.28 message_state, the same meanings as the words above.
MESSAGE_STATE: Mapping[int, ReceiptStatus] = MappingProxyType(
    {
        MessageState.ENROUTE: ReceiptStatus.ACCEPTED,
        MessageState.DELIVERED: ReceiptStatus.DELIVERED,
        MessageState.EXPIRED: ReceiptStatus.TEMPORARY_FAILURE,
        MessageState.DELETED: ReceiptStatus.TEMPORARY_FAILURE,
        MessageState.UNDELIVERABLE: ReceiptStatus.PERMANENT_FAILURE,
        MessageState.ACCEPTED: ReceiptStatus.ACCEPTED,
        MessageState.UNKNOWN: ReceiptStatus.TEMPORARY_FAILURE,
        MessageState.REJECTED: ReceiptStatus.PERMANENT_FAILURE,
    }
)


def receipt_status(*, message_state: int | None, stat: str) -> ReceiptStatus:
    """A receipt's status: the message_state TLV when present and known (it is structured), else
    the ``stat`` word (any case), else ``ACCEPTED`` — an unreadable receipt is kept as evidence
    and moves nothing."""
    if message_state is not None and message_state in MESSAGE_STATE:
        return MESSAGE_STATE[message_state]
    return RECEIPT_STAT.get(stat.strip().upper(), ReceiptStatus.ACCEPTED)
