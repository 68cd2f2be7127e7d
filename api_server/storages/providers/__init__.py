"""Storage providers behind one interface, and a factory from a provider name."""

from __future__ import annotations

from api_server.common import egress
from api_server.storages.providers.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    PresignUnsupportedError,
    StorageAuthError,
    StorageError,
    StorageProvider,
    endpoint_as_url,
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
    if endpoint_url:
        check_endpoint(endpoint_url, kind)
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


def check_endpoint(endpoint_url: str, kind: str, *, unresolved_ok: bool = False) -> None:
    """Refuse (StorageError) an endpoint the outbound-address policy does not allow.

    The SDKs (boto3, azure-storage-blob, google-cloud-storage) open their own connections, where
    pinning to the checked address is impractical: the endpoint is checked when saved and again
    right here, before each client is built. S3 listings, which go through our own httpx client,
    are pinned (providers/s3.py).
    """
    try:
        egress.check_url(endpoint_as_url(endpoint_url, kind), "storage", unresolved_ok=unresolved_ok)
    except egress.EgressRefused as exc:
        raise StorageError(f"endpoint {endpoint_url}: {exc.reason}") from None
