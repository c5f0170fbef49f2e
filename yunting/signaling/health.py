"""Network health from a participant's heartbeat statistics."""

from __future__ import annotations

from yunting.signaling.messages import HealthLevel

# HMCTS video hearings guidance: good < 10 % packet loss, poor 10-15 %, bad >= 15 %.
POOR_LOSS_PCT = 10.0
BAD_LOSS_PCT = 15.0


def classify(packet_loss_pct: float) -> HealthLevel:
    """Health level for a packet loss percentage (HMCTS thresholds, see module constants)."""
    if packet_loss_pct >= BAD_LOSS_PCT:
        return HealthLevel.BAD
    if packet_loss_pct >= POOR_LOSS_PCT:
        return HealthLevel.POOR
    return HealthLevel.GOOD
