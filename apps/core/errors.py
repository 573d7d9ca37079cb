"""One error hierarchy for the whole application.

Services raise these; edges (DRF views, consumers) turn them into one error shape each:
`{"error": {"code", "message", "fields"?}}` over HTTP and `{"type": "error", "code", "message"}`
over WebSockets.
"""

from typing import Any


class ApplicationError(Exception):
    """Base of every error a user can be told about."""

    code = "error"
    http_status = 400
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    code = "invalid"
    default_message = "The input is not valid."


class EmptyText(ValidationFailed):
    code = "empty_text"
    default_message = "The message is empty."


class TextTooLong(ValidationFailed):
    code = "text_too_long"
    default_message = "The message is too long."


class InvalidText(ValidationFailed):
    code = "invalid_text"
    default_message = "The message contains characters that cannot be stored."


class AuthenticationFailed(ApplicationError):
    code = "auth_failed"
    http_status = 401
    default_message = "Authentication failed."


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class RateLimited(ApplicationError):
    code = "rate_limited"
    http_status = 429
    default_message = "Too many messages. Please wait a moment."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, extra={"retry_after": retry_after})
        self.retry_after = retry_after


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    http_status = 403
    default_message = "You may not do that."


class Conflict(ApplicationError):
    """The action does not fit the object's current state (e.g. resolving a resolved ticket)."""

    code = "conflict"
    http_status = 409
    default_message = "That cannot be done in the ticket's current state."


class ServiceUnavailable(ApplicationError):
    """A dependency (the database, Redis) is briefly out of reach: nothing was written, and the
    same request may be sent again (message posts are idempotent on `client_id`)."""

    code = "unavailable"
    http_status = 503
    default_message = "The service is briefly unavailable. Please try again in a few seconds."

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, extra={"retry_after": retry_after})
        self.retry_after = retry_after
