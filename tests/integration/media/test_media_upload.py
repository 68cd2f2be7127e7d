"""Media upload: files become tasks, are served back to members only, and bad files are refused by name.

Each test runs on SQLite and PostgreSQL, against servers with a 1 MiB per-file limit, once
with the project's data directory and once with an S3 bucket (moto) as its import storage.
"""

from __future__ import annotations

import io
import re
import struct
import wave
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import BACKENDS, reset
from tests.integration.storage.test_storage_api import storage_fields, sync_and_wait
from tests.support.labeling import member

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <Audio name="audio" value="$audio"/>
  <Choices name="kind" toName="img,audio"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""
URL = re.compile(r"^/data/upload/(\d+)/([0-9a-f]{32})\.(png|wav|svg)$")
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def png(seed: int, side: int = 8) -> bytes:
    """A valid PNG, different for every seed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((seed * 31 + x * 7 + y) % 256 for x in range(side * 3)) for y in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def wav(seed: int, frames: int = 4000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes((seed + i * 13) % 256 for i in range(frames * 2)))
    return out.getvalue()


def media_set() -> list[tuple[str, bytes, str]]:
    files = [(f"cat-{i:03d}.png", png(i), "image/png") for i in range(200)]
    files += [(f"clip-{i:02d}.wav", wav(i), "audio/wav") for i in range(20)]
    return files


@pytest.fixture(scope="module", params=BACKENDS)
def media_server(request: pytest.FixtureRequest, server_pool: Any) -> Any:
    """A server of one backend whose media limit is 1 MiB per file."""
    return server_pool.new(request.param, KUBELABEL_MEDIA_MAX_FILE_MB=1)


@pytest.fixture
def admin(media_server: Any) -> Iterator[httpx.Client]:
    reset(media_server)
    with media_server.client(timeout=120) as client:
        yield client


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_project(admin: httpx.Client, where: str, request: pytest.FixtureRequest) -> tuple[int, Any]:
    r = admin.post("/api/projects/", json={"title": "media", "label_config": CONFIG})
    assert r.status_code == 201, r.text
    pid = int(r.json()["id"])
    if where == "local":
        return pid, None
    env = request.getfixturevalue("moto_s3")
    bucket = env.new_bucket()
    body = {"project": pid, "prefix": "media/", "use_blob_urls": True, **storage_fields(env, bucket)}
    r = admin.post("/api/storages/s3/", json=body)
    assert r.status_code == 201, r.text
    return pid, (env, bucket, r.json()["id"])


def upload(client: httpx.Client, pid: int, files: list[tuple[str, bytes, str]], **params: Any) -> httpx.Response:
    return client.post(
        f"/api/projects/{pid}/import",
        files=[("file", f) for f in files],
        params={"return_task_ids": "true", **params},
    )


def fetch(client: httpx.Client, url: str, **headers: str) -> httpx.Response:
    r = client.get(url, headers=headers)
    if r.status_code == 303:  # a presigned bucket URL: no credentials needed
        assert "X-Amz-Signature" in r.headers["location"] or "Signature" in r.headers["location"]
        return httpx.get(r.headers["location"], headers=headers)
    return r


def stored_files(server: Any, pid: int, bucket: Any) -> list[str]:
    if bucket is None:
        folder = Path(server.data_dir) / "media" / "upload" / str(pid)
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    env, name, _ = bucket
    return sorted(o.key for o in env.provider(name).iter_objects("media/upload/"))


def test_220_files_become_tasks_served_to_members_only(admin, media_server, where, request):
    pid, bucket = make_project(admin, where, request)
    before = len(stored_files(media_server, pid, bucket))
    files = media_set()
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["task_count"] == 220 and len(body["file_upload_ids"]) == 220
    assert set(body["found_formats"]) == {".png", ".wav"} and body["data_columns"] == ["audio", "image"]
    ids = body["task_ids"]
    assert len(stored_files(media_server, pid, bucket)) == before + 220

    annotator = member(admin, media_server, pid, "annotator", f"ann-{pid}")
    r = admin.post("/api/users/", json={"username": f"outsider-{pid}"})  # a user of no project
    r = admin.post(f"/api/users/{r.json()['id']}/token/")
    outsider = media_server.client(token=r.json()["token"])
    try:
        for task_id, (name, content, ctype) in zip(ids, files, strict=True):
            task = annotator.get(f"/api/tasks/{task_id}/").json()
            field = "image" if ctype == "image/png" else "audio"
            assert set(task["data"]) == {field}, task["data"]
            url = task["data"][field]
            match = URL.match(url)
            assert match and match.group(1) == str(pid), url
            assert name not in url  # stored under a generated name
            got = fetch(annotator, url)
            assert got.status_code == 200, got.text
            assert got.content == content, name
            assert got.headers["content-type"].startswith(ctype)
            if bucket is None:
                assert got.headers["x-content-type-options"] == "nosniff"
                assert "inline" in got.headers["content-disposition"] and name in got.headers["content-disposition"]
            refused = outsider.get(url)
            assert refused.status_code in (403, 404) and content not in refused.content
            assert refused.status_code != 303
        # Without credentials: 401; a range of an audio file: 206 with exactly those bytes.
        wav_url = annotator.get(f"/api/tasks/{ids[-1]}/").json()["data"]["audio"]
        assert httpx.get(media_server.url + wav_url).status_code == 401
        part = fetch(annotator, wav_url, Range="bytes=100-199")
        assert part.status_code == 206 and part.content == files[-1][1][100:200]
    finally:
        annotator.close()
        outsider.close()

    if bucket is not None:
        # The uploads sit under the storage's prefix; a sync of that storage does not import them again.
        env, name, storage_id = bucket
        done = sync_and_wait(admin, f"/api/storages/s3/{storage_id}")
        assert done["status"] == "completed", done
        assert admin.get("/api/tasks/", params={"project": pid, "page_size": 1}).json()["total"] == 220


def test_oversize_and_disguised_files_are_refused_by_name(admin, media_server, where, request):
    pid, bucket = make_project(admin, where, request)
    before = stored_files(media_server, pid, bucket)  # ids restart after a reset: earlier tests' files stay
    big = png(1) + b"\x00" * (1024 * 1024)  # a PNG past the 1 MiB limit
    good = [(f"ok-{i}.png", png(i), "image/png") for i in range(5)]

    r = upload(admin, pid, [*good, ("huge.png", big, "image/png")])
    assert r.status_code == 413, r.text
    assert "huge.png" in r.json()["detail"] and "huge.png" in r.json()["validation_errors"]

    r = upload(admin, pid, [*good, ("cute-cat.png", HTML, "image/png"), ("after.png", png(9), "image/png")])
    assert r.status_code == 415, r.text
    assert "cute-cat.png" in r.json()["detail"] and "HTML" in r.json()["detail"]

    r = upload(admin, pid, [("song.wav", png(3), "audio/wav")])  # a name claiming audio, bytes of an image
    assert r.status_code == 415 and "song.wav" in r.json()["detail"] and "image/png" in r.json()["detail"]

    # Nothing of the refused requests was kept: no task, no file.
    assert admin.get("/api/tasks/", params={"project": pid}).json()["total"] == 0
    assert stored_files(media_server, pid, bucket) == before


def test_names_never_reach_paths_and_svg_is_never_active(admin, media_server, where, request):
    pid, bucket = make_project(admin, where, request)
    before = len(stored_files(media_server, pid, bucket))
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    files = [("../../../../etc/evil.svg", svg, "image/svg+xml"), ("..\\..\\x.png", png(1), "image/png")]
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    tasks = [admin.get(f"/api/tasks/{i}/").json()["data"]["image"] for i in r.json()["task_ids"]]
    assert all(URL.match(url) for url in tasks), tasks
    assert len(stored_files(media_server, pid, bucket)) == before + 2
    got = admin.get(tasks[0])  # SVG: streamed through, never redirected to the bucket
    assert got.status_code == 200 and got.content == svg
    assert got.headers["content-type"].startswith("image/svg+xml")
    assert got.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in got.headers["content-security-policy"]
    assert got.headers["x-content-type-options"] == "nosniff"
    for bad in ("..", "..%2F..%2Fkubelabel.db", "%2e%2e", "x.part"):
        assert admin.get(f"/data/upload/{pid}/{bad}").status_code == 404


def test_task_files_and_media_mix_in_one_request(admin, media_server, where, request):
    pid, _ = make_project(admin, where, request)
    tasks_json = orjson.dumps(
        [{"image": "https://example.com/a.png", "audio": "x.wav"}, {"image": "https://example.com/b.png", "audio": ""}]
    )
    files = [("tasks.json", tasks_json, "application/json"), ("c.png", png(2), "image/png")]
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    assert r.json()["task_count"] == 3 and set(r.json()["found_formats"]) == {".json", ".png"}
    images = [admin.get(f"/api/tasks/{i}/").json()["data"]["image"] for i in r.json()["task_ids"]]
    assert images[:2] == ["https://example.com/a.png", "https://example.com/b.png"] and URL.match(images[2])


def test_a_retry_with_the_same_key_keeps_one_copy(admin, media_server, where, request):
    pid, bucket = make_project(admin, where, request)
    before = len(stored_files(media_server, pid, bucket))
    files = [(f"r-{i}.png", png(i), "image/png") for i in range(3)]
    headers = {"Idempotency-Key": f"media-{pid}"}
    first = admin.post(f"/api/projects/{pid}/import", files=[("file", f) for f in files], headers=headers)
    again = admin.post(f"/api/projects/{pid}/import", files=[("file", f) for f in files], headers=headers)
    assert first.status_code == again.status_code == 201 and first.content == again.content
    other = admin.post(f"/api/projects/{pid}/import", files=[("file", files[0])], headers=headers)
    assert other.status_code == 409
    assert len(stored_files(media_server, pid, bucket)) == before + 3


def test_the_page_cookie_reads_media_as_an_img_would(admin, media_server, where, request):
    """No token header: the session cookie of a signed-in member is enough; a signed-in outsider is refused."""
    pid, _ = make_project(admin, where, request)
    content = png(7)
    r = upload(admin, pid, [("photo.png", content, "image/png")])
    assert r.status_code == 201, r.text
    url = admin.get(f"/api/tasks/{r.json()['task_ids'][0]}/").json()["data"]["image"]
    password = "correct horse battery staple 7"
    for name, is_member in ((f"pagemember-{pid}", True), (f"pageoutsider-{pid}", False)):
        r = admin.post("/api/users/", json={"username": name, "role": "annotator", "password": password})
        assert r.status_code == 201, r.text
        if is_member:
            r = admin.post(f"/api/projects/{pid}/members/", json={"user": r.json()["id"], "role": "annotator"})
            assert r.status_code == 201, r.text
        with httpx.Client(base_url=media_server.url, timeout=60) as page:
            r = page.post("/api/auth/login", json={"username": name, "password": password})
            assert r.status_code == 200, r.text
            got = fetch(page, url)
            if is_member:
                assert got.status_code == 200 and got.content == content
            else:
                assert got.status_code == 403 and content not in got.content


def test_every_provider_stores_an_upload_from_a_stream(storage_env):
    """The providers' streaming upload (S3, GCS and Azure emulators): the object reads back whole."""
    bucket = storage_env.new_bucket()
    provider = storage_env.provider(bucket)
    data = wav(3, frames=300_000)  # 600 KB: more than one read of the stream
    etag = provider.upload("media/upload/1/x.wav", io.BytesIO(data), len(data), "audio/wav")
    assert etag and provider.read("media/upload/1/x.wav") == data
    [listed] = list(provider.iter_objects("media/upload/"))
    assert listed.size == len(data) and listed.etag.strip('"') == etag.strip('"')


def test_control_characters_in_a_file_name_are_kept_out_of_the_database(admin, media_server, where, request):
    """A NUL or escape in a part's file name (no database takes a NUL) is shown as `_`, never a 500."""
    pid, _ = make_project(admin, where, request)
    content = png(5)
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="ca\x00t\x1b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + content + b"\r\n--b0undary--\r\n"
    )
    r = admin.post(
        f"/api/projects/{pid}/import?return_task_ids=true",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert r.status_code == 201, r.text
    url = admin.get(f"/api/tasks/{r.json()['task_ids'][0]}/").json()["data"]["image"]
    got = fetch(admin, url)
    assert got.status_code == 200 and got.content == content
    if where == "local":
        assert 'filename="ca_t_.png"' in got.headers["content-disposition"]


def test_label_studio_files_copied_into_the_data_dir_are_served(admin, media_server):
    """Label Studio's media/upload/<project>/<hash>-<name> copied over resolves; a generated name without its
    record (a deleted project's file, its id reused) does not."""
    r = admin.post("/api/projects/", json={"title": "migrated", "label_config": CONFIG})
    pid = r.json()["id"]
    folder = Path(media_server.data_dir) / "media" / "upload" / str(pid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1a2b3c4d-cat.png").write_bytes(png(4))
    (folder / "1a2b3c4d-page.html").write_bytes(HTML)
    (folder / ("0" * 32 + ".png")).write_bytes(png(5))
    got = admin.get(f"/data/upload/{pid}/1a2b3c4d-cat.png")
    assert got.status_code == 200 and got.content == png(4) and got.headers["content-type"] == "image/png"
    html = admin.get(f"/data/upload/{pid}/1a2b3c4d-page.html")  # never as a page of this origin
    assert html.headers["content-type"] == "application/octet-stream"
    assert (
        html.headers["content-disposition"].startswith("attachment")
        and "sandbox" in html.headers["content-security-policy"]
    )
    assert admin.get(f"/data/upload/{pid}/{'0' * 32}.png").status_code == 404
