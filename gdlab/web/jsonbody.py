"""How the lab reads a request body: UTF-8 JSON, every way of failing a 422 "malformed JSON".

FastAPI answers a body that :func:`json.loads` rejects with a ``JSONDecodeError`` as a validation
error (422, the documented shape), but a body that is not UTF-8 (``UnicodeDecodeError``), nests deeper
than the parser recurses (``RecursionError``) or holds an integer of more digits than Python converts
(``ValueError``) as 400 "There was an error parsing the body". :class:`JSONRoute` reads bodies with
:func:`parse_json`, which turns all of them into ``JSONDecodeError`` with a message saying what is wrong.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

#: The largest number a body may hold, as the schema writes it (``repr`` of the largest float). A
#: number written beyond it would be read as that float (or as infinity): it is read as infinity, which
#: the request models refuse with the field's name, so the bound holds for the number as written.
LARGEST = Decimal(repr(sys.float_info.max))


def _float(text: str) -> float:
    value = float(text)
    if abs(Decimal(text)) > LARGEST:
        return math.copysign(math.inf, value)
    return value


def parse_json(body: bytes) -> Any:
    """``body`` as JSON; ``json.JSONDecodeError`` (with the position) for anything that is not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the body is not UTF-8 text (byte {exc.start})", "", exc.start) from None
    try:
        return json.loads(text, parse_float=_float)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("the body nests arrays or objects too deeply", text, 0) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise json.JSONDecodeError(str(exc), text, 0) from None


class JSONRequest(Request):
    """A request whose :meth:`json` is :func:`parse_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """An API route that reads its body as a :class:`JSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return handle
