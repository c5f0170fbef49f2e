"""Errors shared by every area."""


class InvalidInputError(ValueError):
    """Input that passed type checks but breaks a domain rule; the message says which."""
