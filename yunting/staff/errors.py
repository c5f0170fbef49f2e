"""Errors of the staff area."""


class StaffError(Exception):
    pass


class AuthenticationError(StaffError):
    """Wrong username or password, or a disabled account (deliberately not told apart)."""


class SessionInvalidError(StaffError):
    """No session, or an expired or revoked one."""


class UsernameTakenError(StaffError):
    pass
