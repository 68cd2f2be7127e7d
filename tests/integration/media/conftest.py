"""The S3 emulator of the storage tests, for media stored in a project's bucket."""

from tests.integration.storage.conftest import moto_s3  # noqa: F401
