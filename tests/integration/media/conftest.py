"""The storage tests' emulators, for media stored in a project's bucket."""

from tests.integration.storage.conftest import azurite, gcs_emulator, moto_s3, storage_env  # noqa: F401
