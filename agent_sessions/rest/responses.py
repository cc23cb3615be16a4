"""JSON responses encoded with orjson."""

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    message: str, status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The REST error shape: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)
