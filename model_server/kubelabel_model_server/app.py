"""HTTP surface of the model server: Label Studio's ML backend protocol on FastAPI.

GET /health, POST /setup, POST /predict, POST /webhook, POST /train (legacy), GET /versions.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kubelabel_model_server.backend import MODEL_CLASS, BadRequest, TextClassificationBackend
from kubelabel_model_server.settings import ModelServerSettings

log = logging.getLogger(__name__)

# Probes must work without credentials.
_OPEN_PATHS = {"/", "/health"}


def _basic_auth_ok(header: str | None, user: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        given_user, _, given_pass = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(given_user, user) & secrets.compare_digest(given_pass, password)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadRequest("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def create_app(settings: ModelServerSettings | None = None) -> FastAPI:
    settings = settings or ModelServerSettings()
    backend = TextClassificationBackend(settings)
    app = FastAPI(title="kubelabel model server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.backend = backend

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Any) -> Any:
        user, password = settings.basic_auth_user, settings.basic_auth_pass
        open_path = request.url.path in _OPEN_PATHS
        if user and not open_path and not _basic_auth_ok(request.headers.get("authorization"), user, password or ""):
            return JSONResponse(
                {"detail": "authentication required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="model-server"'},
            )
        return await call_next(request)

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"status": "error", "detail": str(exc)}, status_code=400)

    @app.get("/")
    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "UP", "model_class": MODEL_CLASS}

    # Handlers that touch the model are sync: FastAPI runs them in its thread pool, so
    # training one project never stalls the event loop.
    @app.post("/setup")
    async def setup(request: Request) -> dict[str, str]:
        body = await _json_object(request)
        return {"model_version": await _in_thread(backend.setup, body)}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        model_version, results = await _in_thread(backend.predict, body)
        return {"results": results, "model_version": model_version}

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await _json_object(request)
        outcome = await _in_thread(backend.handle_event, body)
        if outcome is None:
            return JSONResponse({"status": "Unknown event"}, status_code=200)
        return JSONResponse({"status": "ok", "result": outcome.as_dict()}, status_code=201)

    @app.post("/train")
    async def train(request: Request) -> JSONResponse:
        body = await _json_object(request)
        outcome = await _in_thread(backend.train, body)
        return JSONResponse({"status": "ok", "result": outcome.as_dict()}, status_code=201)

    @app.get("/versions")
    def versions(project: str | None = None) -> dict[str, Any]:
        current, history = backend.versions(project)
        return {"model_version": current, "versions": history}

    @app.get("/metrics")
    def metrics() -> dict[str, Any]:
        return {}

    return app


async def _in_thread(func: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func, *args)


def serve(host: str = "127.0.0.1", port: int = 9090) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ModelServerSettings()
    log.info("model server on %s:%d, model dir %s", host, port, settings.model_dir.resolve())
    # Idle connections kept longer than pooled clients keep theirs (httpx: 5 s): closing first would
    # race a request already sent on one (as the API server's KEEP_ALIVE_SECONDS).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_keep_alive=75)
    return 0
