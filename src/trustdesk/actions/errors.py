"""Domain errors; the API maps each to its HTTP status and a JSON body."""

from __future__ import annotations


class ActionError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the input at fault, when there is one (named in the JSON error)
        if code:
            self.code = code


class NotFound(ActionError):
    status = 404
    code = "not_found"


class Forbidden(ActionError):
    status = 403
    code = "forbidden"


class Unauthorized(ActionError):
    status = 401
    code = "unauthorized"


class Conflict(ActionError):
    status = 409
    code = "conflict"


class Invalid(ActionError):
    status = 422
    code = "invalid"


class RateLimited(ActionError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))
