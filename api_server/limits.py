"""Request body size limit, enforced while the body streams in (uploads may be chunked)."""

from __future__ import annotations

from typing import Any

import orjson

from api_server.common.errors import PayloadTooLarge


def _too_large_message(limit: int) -> str:
    return f"request body is larger than the limit of {limit // (1024 * 1024)} MiB (KUBELABEL_MAX_UPLOAD_MB)"


class BodySizeLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(_too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Any) -> None:
        body = orjson.dumps({"status_code": 413, "detail": _too_large_message(self.max_bytes)})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
