"""The media node: one server-side WebRTC peer per participant, forwarding encoded frames.

``node.MediaNode`` implements ``signaling.ports.MediaPort``. Everything that touches aiortc's
private internals is in ``hooks``; the forwarding policy (keyframe gating, backlog, keyframe
request throttling) is sans-I/O in ``forwarding``; VP8 bitstream facts in ``vp8``.
"""
