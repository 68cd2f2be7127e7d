"""`make run`: the API server on SQLite with a sample project, for trying kubelabel locally.

The admin token and password are generated once and kept in the data directory (unless
KUBELABEL_ADMIN_TOKEN / KUBELABEL_ADMIN_PASSWORD are set), so restarts keep them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "api_server" / "samples"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", default="./data")
    args = parser.parse_args()

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = data_dir / "admin-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_hex(20))
        token_file.chmod(0o600)
    token = token_file.read_text().strip()
    password_file = data_dir / "admin-password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)

    env = os.environ.copy()
    env.setdefault("KUBELABEL_DATA_DIR", str(data_dir))
    env.setdefault("KUBELABEL_ADMIN_TOKEN", token)
    env.setdefault("KUBELABEL_ADMIN_PASSWORD", password_file.read_text().strip())
    env.setdefault("KUBELABEL_PROJECT_FILE", str(SAMPLES / "project.json"))
    env.setdefault("KUBELABEL_SEED_TASKS", str(SAMPLES / "tasks.json"))

    url = f"http://{args.host}:{args.port}"
    print(f"kubelabel API:  {url}   (docs: {url}/docs)")
    print(f"admin token:    {env['KUBELABEL_ADMIN_TOKEN']}   (also in {token_file})")
    where = "from KUBELABEL_ADMIN_PASSWORD" if "KUBELABEL_ADMIN_PASSWORD" in os.environ else f"also in {password_file}"
    print(f"admin password: {env['KUBELABEL_ADMIN_PASSWORD']}   (user admin; {where})")
    print(f"try:            curl -H 'Authorization: Token {env['KUBELABEL_ADMIN_TOKEN']}' {url}/api/projects/1/")
    sys.stdout.flush()
    kubelabel = Path(sys.executable).with_name("kubelabel")
    os.execve(str(kubelabel), [str(kubelabel), "serve", "--host", args.host, "--port", str(args.port)], env)


if __name__ == "__main__":
    sys.exit(main())
