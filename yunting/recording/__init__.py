"""The official record of a hearing: every published track, muxed without transcoding into
short WebM segments, each sealed into the evidence ledger (DESIGN.md, "Recording")."""
