"""The one storage interface every provider implements, and its error types.

Listing is a generator over the provider's pages so a sync never holds a bucket's whole
listing in memory. Errors are translated into the small hierarchy below, with messages
that say what to fix and never contain credentials.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from api_server.storages.providers.credentials import Credentials


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object of a listing. `etag` is the S3/Azure ETag or the GCS generation, as a string."""

    key: str
    etag: str
    size: int
    last_modified: datetime | None = None


class StorageError(Exception):
    """Any storage failure; the message is safe to show to users and to log."""


class StorageAuthError(StorageError):
    """The credentials are missing, wrong or not allowed to do this."""


class BucketNotFoundError(StorageError):
    """The bucket (or Azure container) does not exist."""


class ObjectNotFoundError(StorageError):
    """The object does not exist."""


class PresignUnsupportedError(StorageError):
    """The configured credentials cannot sign URLs (e.g. GCS without a service-account key)."""


class StorageProvider(abc.ABC):
    """A bucket (or container) of one cloud provider."""

    #: URL scheme of task data pointing into this provider: s3, gs or azure-blob.
    scheme: str
    #: Label Studio storage type name: s3, gcs or azure.
    kind: str

    def __init__(self, bucket: str, credentials: Credentials | None = None, endpoint_url: str | None = None) -> None:
        """What every provider's constructor starts with: the bucket, the credentials (none: the SDK's
        default chain, e.g. a workload identity) and the endpoint as the SDK uses it (None: the
        provider's public service)."""
        if not bucket:
            raise StorageError(f"{self.kind}: bucket/container name is empty")
        self.bucket = bucket
        self.credentials = credentials or Credentials()
        self.endpoint_url = (endpoint_as_url(endpoint_url, self.kind).rstrip("/") or None) if endpoint_url else None

    def uri(self, key: str) -> str:
        """The storage URI of an object, as Label Studio writes it into task data."""
        return f"{self.scheme}://{self.bucket}/{key}"

    @abc.abstractmethod
    def iter_objects(self, prefix: str = "", *, recursive: bool = True, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Yield the objects under `prefix`, one provider page at a time (lexicographic key order)."""

    @abc.abstractmethod
    def read(self, key: str) -> bytes:
        """The whole object."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object (callers close it)."""

    @abc.abstractmethod
    def presign(self, key: str, ttl_seconds: int) -> str:
        """A URL that reads the object without credentials for `ttl_seconds`."""

    @abc.abstractmethod
    def write(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        """Create or replace the object; returns its new etag/generation."""

    def upload(self, key: str, stream: BinaryIO, size: int, content_type: str) -> str:
        """Create or replace the object from a readable stream of `size` bytes, never held whole in memory."""
        raise StorageError(f"{self.kind}: this provider cannot store uploaded files")

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def validate(self) -> None:
        """Raise a StorageError with a clear message unless the bucket exists and the credentials work."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""


def endpoint_as_url(endpoint_url: str, kind: str) -> str:
    """The endpoint as the SDK will use it (the GCS emulator setting may omit the scheme)."""
    return f"http://{endpoint_url}" if kind == "gcs" and "://" not in endpoint_url else endpoint_url
