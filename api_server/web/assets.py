"""The web app's files under /static/: content-hashed URLs, cached for good, served gzipped.

Each file is addressed as `name.<hash>.ext`, the hash being the first 12 hex digits of its
sha256, so a new release changes every URL whose file changed and browsers may keep the old
ones forever (`immutable`). A name with another hash is a 404, never a stale file under a
long cache. Text files are gzipped once, in memory, on first request (the editor's 2 MB
bundle is 613 KB gzipped); StaticFiles does the rest (paths, 404s, HEAD).
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import re
import threading
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent
# URL path under /static/ -> file; the app's own files, then the vendored editor.
ROOTS = {"": WEB / "static", "vendor/label-studio/": WEB / "vendor" / "label-studio"}
PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
_COMPRESSIBLE = {".js", ".css", ".html", ".txt", ".json", ".svg"}
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)?$")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class Assets:
    """The files the app serves and their hashed URLs (computed once, at start)."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}  # plain relative name -> file
        self.hashes: dict[str, str] = {}
        for prefix, root in ROOTS.items():
            for path in sorted(root.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    name = prefix + path.name
                    self.files[name] = path
                    self.hashes[name] = _digest(path)
        self._gzipped: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def url(self, name: str) -> str:
        stem, ext = posixpath.splitext(name)
        return f"{PREFIX}{stem}.{self.hashes[name]}{ext}"

    def resolve(self, hashed: str) -> str | None:
        """The plain name behind a hashed path, when the hash is the file's current one."""
        match = _HASHED.match(hashed)
        if match is None:
            return None
        name = match["stem"] + (match["ext"] or "")
        return name if self.hashes.get(name) == match["hash"] else None

    def gzipped(self, name: str) -> bytes:
        with self._lock:
            if name not in self._gzipped:
                self._gzipped[name] = gzip.compress(self.files[name].read_bytes(), compresslevel=9, mtime=0)
            return self._gzipped[name]

    def compressible(self, name: str) -> bool:
        return self.files[name].suffix in _COMPRESSIBLE


class HashedStaticFiles(StaticFiles):
    """StaticFiles over `Assets`: only current hashed names, immutable caching, gzip when accepted."""

    def __init__(self, assets: Assets) -> None:
        super().__init__(directory=str(ROOTS[""]), check_dir=True)
        self.assets = assets

    def lookup_path(self, path: str) -> tuple[str, Any]:
        name = self.assets.resolve(path.replace("\\", "/"))
        if name is None:
            return "", None
        full = self.assets.files[name]
        return str(full), full.stat()

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code not in (200, 304):
            return response
        name = self.assets.resolve(path)
        assert name is not None  # a 200 came from lookup_path
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not self.assets.compressible(name):
            return response
        response.headers["Vary"] = "Accept-Encoding"
        if response.status_code != 200 or "gzip" not in Headers(scope=scope).get("accept-encoding", ""):
            return response
        body = await anyio.to_thread.run_sync(self.assets.gzipped, name)
        skip = {"content-length", "accept-ranges"}
        headers = {k: v for k, v in response.headers.items() if k.lower() not in skip}
        headers.update({"Content-Encoding": "gzip", "Content-Length": str(len(body))})
        # HEAD: the same headers, no body.
        return Response(body if scope["method"] == "GET" else b"", headers=headers, media_type=response.media_type)
