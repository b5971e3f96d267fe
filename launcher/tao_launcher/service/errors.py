"""The one error the service's routes and job runner raise: an HTTP status and one line, answered in the TAO
API's shape, ``{"error_desc": "...", "error_code": <status>}`` (app.py translates it, once)."""


class RequestError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
