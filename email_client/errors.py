"""Errors that the HTTP handlers turn into a 400 response."""


class InvalidInput(ValueError):
    """A request carries an invalid value; `field` names it when one field is at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, str]:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body
