"""A router that answers both `/path` and `/path/`.

Label Studio's paths end in a slash and its clients call them that way, while hand-written
clients often drop it. A redirect would lose POST bodies for many clients, so both forms are
served; only the canonical (Label Studio) one appears in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


class DualSlashRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().add_api_route(path, endpoint, **kwargs)
        alternate = path[:-1] if path.endswith("/") else path + "/"
        # The root of a prefixed router ("/api/projects" + "/") also gets its slash-less form.
        usable = bool(alternate) or bool(self.prefix)
        if usable and alternate != "/" and not path.endswith("}/download"):
            kwargs = {**kwargs, "include_in_schema": False}
            kwargs.pop("operation_id", None)
            super().add_api_route(alternate, endpoint, **kwargs)
