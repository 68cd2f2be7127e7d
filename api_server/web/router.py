"""The labeling web app: one HTML shell at / and its files under /static/ (see assets.py).

The shell is never cached (it names the current hashed files); everything it loads is. The app
is plain JavaScript over the same HTTP API the SDK uses, with Label Studio's editor behind one
adapter (static/editor.js).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from api_server.web.assets import PREFIX, Assets, HashedStaticFiles

# As strict as the editor allows: scripts only from here (the editor needs no eval), inline
# styles (its React components set them), no plugins, frames or foreign form targets. Images and
# media may come from anywhere: task data holds plain URLs, and bucket media is redirected to
# presigned links on the storage's own host. None of these can run code. The editor fetch()es
# audio (its waveform) and time series from the same places, so connect-src is as open as
# img-src, which already lets a page send data anywhere: it adds no new way out.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src * data: blob:",
        "media-src * data: blob:",
        "font-src 'self' data:",
        "connect-src * data: blob:",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)
SHELL_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

ASSETS = Assets()


def _shell() -> str:
    html = (ASSETS.files["index.html"]).read_text()
    for name in ASSETS.files:
        html = html.replace("{{static:" + name + "}}", ASSETS.url(name))
    return html


SHELL = _shell()

router = APIRouter(include_in_schema=False)
router.mount(PREFIX.rstrip("/"), HashedStaticFiles(ASSETS), name="static")


@router.get("/")
def shell() -> HTMLResponse:
    return HTMLResponse(SHELL, headers=SHELL_HEADERS)


@router.get("/label/")
def old_label_page() -> RedirectResponse:
    # The page's former address (bookmarks, docs of earlier releases).
    return RedirectResponse("/")
