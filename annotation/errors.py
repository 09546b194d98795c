"""Errors raised by services; the API turns them into 4xx answers with a message."""


class ServiceError(Exception):
    """A request that breaks a rule. `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code

    default_code = "invalid"

    def as_dict(self) -> dict:
        body = {"detail": self.message, "code": self.code}
        if self.field:
            body["field"] = self.field
        return body


class ValidationFailed(ServiceError):
    status = 400
    default_code = "invalid"


class Conflict(ServiceError):
    status = 409
    default_code = "conflict"


class NotFound(ServiceError):
    status = 404
    default_code = "not_found"
