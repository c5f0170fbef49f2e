"""Signaling: the hearing room protocol (sans-I/O core), its websocket adapter and the bus."""
