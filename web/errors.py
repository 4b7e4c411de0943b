"""Domain errors, raised by repositories and services and mapped to HTTP in one place."""


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The request carries a missing, malformed or out-of-range value."""

    status_code = 400


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """The change clashes with the current state, such as a duplicate address or a campaign already sent."""

    status_code = 409


class ServiceUnavailable(DomainError):
    """email_client did not respond, so the change can be tried again later."""

    status_code = 503


class Unauthenticated(DomainError):
    """The request carries no valid session cookie or API token."""

    status_code = 401


class TooManyRequests(DomainError):
    """Too many failed sign-ins; `retry_after` is the number of seconds until the next attempt is allowed."""

    status_code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
