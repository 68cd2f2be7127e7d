"""Fetch Label Studio's standalone editor into api_server/web/vendor/label-studio/, pinned and checked.

    python scripts/vendor_editor.py           # (re)write the vendored files
    python scripts/vendor_editor.py --check   # fetch again and fail if the committed files differ

The editor is `@heartexlabs/label-studio@1.4.0` from npm (Apache-2.0). `npm pack` fetches the
tarball with npm's own client; its sha512 must equal INTEGRITY below before anything is
unpacked. Only the four files the page needs are kept (the bundle, its stylesheet and both
licence files, shipped for attribution); the 7.8 MB source map stays out. MANIFEST.json
records the package, its integrity and each file's sha256, which tests/integration/web
checks against the committed files, so running the server never needs Node or the network.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@heartexlabs/label-studio"
VERSION = "1.4.0"
INTEGRITY = "sha512-NczF2gDF/Whq7+xI3tYZLrAk8Pq6hacXhYEDmWfHAQIZ0eiieyrMxxHz4KIU7wnagComaGv+QJ2Zc6SBcBmuCg=="
# Tarball member -> vendored file name.
FILES = {
    "package/build/static/js/main.js": "main.js",
    "package/build/static/css/main.css": "main.css",
    "package/LICENSE": "LICENSE",
    "package/build/static/js/main.js.LICENSE.txt": "main.js.LICENSE.txt",
}
TARGET = Path(__file__).resolve().parent.parent / "api_server" / "web" / "vendor" / "label-studio"


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_tarball(workdir: Path) -> bytes:
    out = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    name = json.loads(out.stdout)[0]["filename"]
    data = (workdir / name).read_bytes()
    if integrity_of(data) != INTEGRITY:
        sys.exit(f"{PACKAGE}@{VERSION}: integrity {integrity_of(data)} is not the pinned {INTEGRITY}")
    return data


def extract(tarball: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(tarball) as archive:
        for member, name in FILES.items():
            handle = archive.extractfile(member)
            if handle is None:
                sys.exit(f"{member} is missing from {PACKAGE}@{VERSION}")
            files[name] = handle.read()
    return files


def manifest(files: dict[str, bytes]) -> dict[str, object]:
    return {
        "package": PACKAGE,
        "version": VERSION,
        "integrity": INTEGRITY,
        "license": "Apache-2.0",
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        fetch_tarball(workdir)
        files = extract(next(workdir.glob("*.tgz")))
    wanted = {**files, "MANIFEST.json": (json.dumps(manifest(files), indent=2) + "\n").encode()}
    if args.check:
        stale = [n for n, data in wanted.items() if not (TARGET / n).is_file() or (TARGET / n).read_bytes() != data]
        if stale:
            print(f"differs from {PACKAGE}@{VERSION}: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{TARGET} matches {PACKAGE}@{VERSION} ({INTEGRITY[:19]}...)")
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, data in wanted.items():
        (TARGET / name).write_bytes(data)
    print(f"wrote {len(wanted)} files of {PACKAGE}@{VERSION} to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
