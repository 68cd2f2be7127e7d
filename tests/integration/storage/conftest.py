"""Storage emulators started and stopped by fixtures, each on 127.0.0.1 and a free port.

- S3: moto's standalone server (`python -m moto.server`), which accepts any signature;
- S3 with signature checks: s3rver (npm, node_modules/.bin/s3rver), keys S3RVER/S3RVER;
- Azure Blob: Azurite (npm, node_modules/.bin/azurite-blob), always with --disableTelemetry;
- GCS: gcp-storage-emulator (PyPI), in memory.

The npm emulators come from the repo's package.json (`npm ci`); when missing they skip
locally and fail in CI (tests/support/services.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api_server.storages.providers import Credentials, StorageProvider, make_provider
from tests.support.net import free_port, wait_for_port
from tests.support.processes import stop_process
from tests.support.services import unavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class StorageEnv:
    """One running emulator and how to reach it."""

    kind: str  # s3 | gcs | azure
    endpoint: str
    credentials: Credentials
    create_bucket: Callable[[str], None]
    extra: dict[str, str] = field(default_factory=dict)

    def provider(self, bucket: str, credentials: Credentials | None = None, **options: str) -> StorageProvider:
        return make_provider(
            self.kind,
            bucket,
            credentials=credentials or self.credentials,
            endpoint_url=self.endpoint,
            project_id=self.extra.get("project_id"),
            account_name=self.extra.get("account_name"),
            **options,
        )

    def new_bucket(self) -> str:
        name = f"kl-{uuid.uuid4().hex[:12]}"
        self.create_bucket(name)
        return name


def _start(argv: list[str], port: int, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    try:
        wait_for_port(port, timeout=60)
    except TimeoutError:
        proc.kill()
        log.seek(0)
        pytest.fail(f"{name} did not start: {log.read()[-2000:].decode(errors='replace')}", pytrace=False)
    return proc


def _node_tool(name: str) -> str:
    path = NODE_BIN / name
    if not path.exists():
        unavailable(f"{path} is missing: run `npm ci` at the repo root")
    if shutil.which("node") is None:
        unavailable("node is not installed")
    return str(path)


def _s3_credentials(key: str, secret: str) -> Credentials:
    return Credentials(aws_access_key_id=key, aws_secret_access_key=secret)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[StorageEnv]:
    port = free_port()
    proc = _start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, "moto_server")
    endpoint = f"http://127.0.0.1:{port}"
    creds = _s3_credentials("testing", "testing")

    def create(name: str) -> None:
        import boto3

        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="t"
        ).create_bucket(Bucket=name)

    try:
        yield StorageEnv("s3", endpoint, creds, create)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def s3rver() -> Iterator[StorageEnv]:
    tool = _node_tool("s3rver")
    port = free_port()
    data = tempfile.mkdtemp(prefix="s3rver-")
    proc = _start([tool, "-a", "127.0.0.1", "-p", str(port), "-d", data, "--silent"], port, "s3rver")
    endpoint = f"http://127.0.0.1:{port}"
    creds = _s3_credentials("S3RVER", "S3RVER")

    def create(name: str) -> None:
        import boto3
        from botocore.config import Config

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="S3RVER",
            aws_secret_access_key="S3RVER",
            config=Config(s3={"addressing_style": "path"}),
        ).create_bucket(Bucket=name)

    try:
        yield StorageEnv("s3", endpoint, creds, create)
    finally:
        stop_process(proc)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def azurite() -> Iterator[StorageEnv]:
    tool = _node_tool("azurite-blob")
    port = free_port()
    argv = [
        tool,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--disableTelemetry",  # without it Azurite tries to reach the internet
        "--skipApiVersionCheck",
        "--silent",
    ]
    proc = _start(argv, port, "azurite")
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    creds = Credentials(
        azure_storage_connection_string=(
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={endpoint};"
        )
    )

    def create(name: str) -> None:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(creds.azure_storage_connection_string or "").create_container(name)

    try:
        yield StorageEnv("azure", endpoint, creds, create, extra={"account_name": AZURITE_ACCOUNT})
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[StorageEnv]:
    exe = shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent)) or shutil.which(
        "gcp-storage-emulator"
    )
    if exe is None:
        unavailable("gcp-storage-emulator is not installed (pip install -e '.[dev]')")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    proc = _start(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"], port, "gcs", env
    )
    endpoint = f"http://127.0.0.1:{port}"

    def create(name: str) -> None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        storage.Client(
            project="kubelabel-test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
            use_auth_w_custom_endpoint=False,
        ).create_bucket(name)

    try:
        yield StorageEnv("gcs", endpoint, Credentials(), create, extra={"project_id": "kubelabel-test"})
    finally:
        stop_process(proc)


@pytest.fixture(params=["s3", "gcs", "azure"])
def storage_env(request: pytest.FixtureRequest) -> StorageEnv:
    """Each provider's emulator in turn."""
    name = {"s3": "moto_s3", "gcs": "gcs_emulator", "azure": "azurite"}[request.param]
    return request.getfixturevalue(name)
