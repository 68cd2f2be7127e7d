"""Storage providers behind one interface, and a factory from a provider name."""

from __future__ import annotations

from api_server.storages.providers.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    PresignUnsupportedError,
    StorageAuthError,
    StorageError,
    StorageProvider,
)
from api_server.storages.providers.credentials import Credentials, load_credentials
from api_server.storages.providers.filters import KeyFilter

__all__ = [
    "BucketNotFoundError",
    "Credentials",
    "KeyFilter",
    "ObjectInfo",
    "ObjectNotFoundError",
    "PresignUnsupportedError",
    "StorageAuthError",
    "StorageError",
    "StorageProvider",
    "load_credentials",
    "make_provider",
    "SCHEMES",
]

# URI scheme of task data -> provider kind.
SCHEMES = {"s3": "s3", "gs": "gcs", "azure-blob": "azure"}


def make_provider(
    kind: str,
    bucket: str,
    *,
    credentials: Credentials | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    project_id: str | None = None,
    account_name: str | None = None,
    sse_kms_key_id: str | None = None,
    signature_version: str | None = None,
) -> StorageProvider:
    """A provider for `kind` in {s3, gcs, azure}; imports only that provider's SDK."""
    if kind == "s3":
        from api_server.storages.providers.s3 import S3Provider

        return S3Provider(
            bucket,
            credentials=credentials,
            region=region,
            endpoint_url=endpoint_url,
            sse_kms_key_id=sse_kms_key_id,
            signature_version=signature_version or "s3v4",
        )
    if kind == "gcs":
        from api_server.storages.providers.gcs import GCSProvider

        return GCSProvider(bucket, credentials=credentials, project_id=project_id, endpoint_url=endpoint_url)
    if kind == "azure":
        from api_server.storages.providers.azure import AzureBlobProvider

        return AzureBlobProvider(bucket, credentials=credentials, account_name=account_name, endpoint_url=endpoint_url)
    raise StorageError(f"unknown storage provider {kind!r} (expected s3, gcs or azure)")
