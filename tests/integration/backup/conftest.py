"""The storage emulators of the storage tests (each on 127.0.0.1), for backups."""

from tests.integration.storage.conftest import azurite, gcs_emulator, moto_s3  # noqa: F401
