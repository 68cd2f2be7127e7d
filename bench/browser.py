"""The labeling page in a real browser: time from asking /next to the editor showing the task (run by hand).

Starts `kubelabel serve` (bench/apiserver.py) per backend and a small image server on 127.0.0.1,
signs in with a password in headless Chromium (Debian's `chromium`, Python Playwright), and
labels --tasks tasks of a text project and of an image project (a 1024x768 PNG per task, each at
its own URL so none comes from the browser's cache). For every task the page records the time
from its /next request to the editor being ready (built, and the task's images loaded), with
performance.measure("kubelabel:next-to-ready"); the first task of each project also includes
nothing of the page load (the bundle is parsed before). Prints the median and p90 per kind and
the image/text ratio; no thresholds.

    .venv/bin/python bench/browser.py                       # 30 tasks each, SQLite and PostgreSQL
    .venv/bin/python bench/browser.py --backends sqlite --tasks 10
"""

from __future__ import annotations

import argparse
import statistics
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from apiserver import TOKEN, Server
from playwright.sync_api import sync_playwright

PASSWORD = "bench-admin-password-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TEXT = """<View><Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices></View>"""
IMAGE = """<View><Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <Choices name="quality" toName="image"><Choice value="Good"/><Choice value="Bad"/></Choices></View>"""
READY = "#editor[data-ready]:not([data-ready=''])"


def png(width: int, height: int) -> bytes:
    # A gradient, so the PNG is not trivially small (about what a photo of this size weighs).
    rows = (
        bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, (x * y) % 256))
        for y in range(height)
    )
    raw = b"".join(b"\x00" + row for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def image_server() -> ThreadingHTTPServer:
    body = png(1024, 768)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def label_all(page, base: str, project: int, tasks: int) -> list[float]:
    page.goto(f"{base}/#/p/{project}/label")
    times: list[float] = []
    for _ in range(tasks):
        page.wait_for_selector(READY)
        task = page.get_attribute("#editor", "data-ready")
        times.append(page.evaluate("() => performance.getEntriesByName('kubelabel:next-to-ready').pop().duration"))
        page.keyboard.press("1")
        page.click("#editor button[aria-label=submit]")
        page.wait_for_function(
            "(id) => document.querySelector('#done')"
            " || !['', id].includes(document.querySelector('#editor').dataset.ready)",
            arg=task,
        )
    page.wait_for_selector("#done")
    return times


def run(backend: str, tasks: int, images: ThreadingHTTPServer, chromium) -> dict[str, list[float]]:
    server = Server(backend, env={"KUBELABEL_ADMIN_PASSWORD": PASSWORD}).start()
    try:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
        host = f"http://127.0.0.1:{images.server_address[1]}"
        text = api.post("/api/projects/", json={"title": "Bench text", "label_config": TEXT}).json()["id"]
        api.post(f"/api/projects/{text}/import", json=[{"text": f"review number {i} " * 20} for i in range(tasks)])
        image = api.post("/api/projects/", json={"title": "Bench image", "label_config": IMAGE}).json()["id"]
        api.post(f"/api/projects/{image}/import", json=[{"image": f"{host}/img/{i}.png"} for i in range(tasks)])
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{server.url}/#/login")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#login button")
        page.wait_for_selector("#project-list")
        out = {"text": label_all(page, server.url, text, tasks), "image": label_all(page, server.url, image, tasks)}
        context.close()
        return out
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    images = image_server()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for backend in args.backends:
                times = run(backend, args.tasks, images, chromium)
                medians = {kind: statistics.median(values) for kind, values in times.items()}
                for kind, values in times.items():
                    p90 = sorted(values)[int(0.9 * (len(values) - 1))]
                    print(
                        f"{backend:8} {kind:5} /next -> editor ready: median {medians[kind]:6.1f} ms, "
                        f"p90 {p90:6.1f} ms, first {values[0]:6.1f} ms ({len(values)} tasks)"
                    )
                print(f"{backend:8} image/text median ratio {medians['image'] / medians['text']:.2f}")
        finally:
            chromium.close()
    images.shutdown()


if __name__ == "__main__":
    main()
