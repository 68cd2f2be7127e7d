"""How the web app is served: the vendored editor as pinned, content-hashed URLs cached for good,
gzip, and the shell's Content-Security-Policy."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from api_server.web.assets import WEB
from api_server.web.router import CSP

VENDOR = WEB / "vendor" / "label-studio"


def test_the_vendored_editor_is_the_pinned_release():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    assert (manifest["package"], manifest["version"]) == ("@heartexlabs/label-studio", "1.4.0")
    # The sha512 of the npm tarball scripts/vendor_editor.py checked before unpacking these files.
    assert manifest["integrity"] == (
        "sha512-NczF2gDF/Whq7+xI3tYZLrAk8Pq6hacXhYEDmWfHAQIZ0eiieyrMxxHz4KIU7wnagComaGv+QJ2Zc6SBcBmuCg=="
    )
    assert set(manifest["files"]) == {"main.js", "main.css", "LICENSE", "main.js.LICENSE.txt"}
    for name, sha256 in manifest["files"].items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sha256, name
    assert "Apache License" in (VENDOR / "LICENSE").read_text()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_the_shell_names_hashed_files_under_a_strict_policy(live_server):
    with live_server.client(token=None) as client:
        shell = client.get("/")
        assert shell.status_code == 200
        assert shell.headers["cache-control"] == "no-cache"
        assert shell.headers["content-security-policy"] == CSP
        assert "script-src 'self';" in CSP and "unsafe-eval" not in CSP and "object-src 'none'" in CSP
        assert shell.headers["x-frame-options"] == "DENY"
        urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', shell.text)
        assert len(urls) == 7, urls
        for url in urls:
            assert re.search(r"\.[0-9a-f]{12}(\.[a-z]+)?$", url), url

        editor = next(u for u in urls if u.startswith("/static/vendor/label-studio/main.") and u.endswith(".js"))
        plain = client.get(editor, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert plain.content == (VENDOR / "main.js").read_bytes()
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert plain.headers["vary"] == "Accept-Encoding"

        zipped = client.get(editor, headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) < len(plain.content) / 3  # 613 KB of 2.0 MB
        assert zipped.content == plain.content  # httpx decodes it back
        assert zipped.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert zipped.headers["content-type"].startswith(("application/javascript", "text/javascript"))
        head = client.head(editor, headers={"Accept-Encoding": "gzip"})
        assert head.headers["content-length"] == zipped.headers["content-length"]

        # Another hash, no hash, the plain file name, a path out of the folder: all 404.
        stale = re.sub(r"\.[0-9a-f]{12}\.js$", ".000000000000.js", editor)
        for path in (stale, "/static/vendor/label-studio/main.js", "/static/app.js", "/static/../settings.py"):
            assert client.get(path).status_code == 404, path
        assert client.post(editor).status_code == 405

        assert client.get("/label/", follow_redirects=False).headers["location"] == "/"


def test_the_packaged_files_include_the_editor():
    from tomllib import loads

    from tests.conftest import ROOT

    data = loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api_server"]
    assert "web/static/*" in data and "web/vendor/label-studio/*" in data
