"""Errors of the staff area."""


class StaffError(Exception):
    pass


class AuthenticationError(StaffError):
    """Wrong username or password, or a disabled account (deliberately not told apart)."""


class SessionInvalidError(StaffError):
    """No session, or an expired or revoked one."""


class UsernameTakenError(StaffError):
    pass


class TooManyAttemptsError(StaffError):
    """Sign-in refused for a while after repeated failures."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
