"""Signaling: the hearing room protocol (sans-I/O core), its websocket adapter and the bus.

The core is ``room.Room``: the adapter feeds it socket events and the time, and carries out the
outputs it returns (``outputs.py``). Messages and their JSON Schema: ``messages.py``,
``schema.py``; the protocol itself is described in ``docs/signaling.md``.
"""
