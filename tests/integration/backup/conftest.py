"""The S3 emulator of the storage tests (moto's server on 127.0.0.1), for backups."""

from tests.integration.storage.conftest import moto_s3  # noqa: F401
