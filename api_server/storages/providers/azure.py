"""Azure Blob Storage through azure-storage-blob.

Credentials, first that is set wins: a connection string; an account name and key; an
account name and a SAS token. Presigned URLs are SAS URLs: signed with the account key
(read-only, the requested TTL), or, with only a SAS token configured, the blob URL carrying
that token (its own expiry applies).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import (
    BlobPrefix,
    BlobProperties,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    generate_blob_sas,
)

from api_server.storages.providers.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    PresignUnsupportedError,
    StorageAuthError,
    StorageError,
    StorageProvider,
)
from api_server.storages.providers.credentials import Credentials


class _BlobStream:
    """A file-like reader over a StorageStreamDownloader's chunks."""

    def __init__(self, downloader: Any) -> None:
        self._chunks = downloader.chunks()
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        self._chunks = iter(())

    def __enter__(self) -> _BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AzureBlobProvider(StorageProvider):
    scheme = "azure-blob"
    kind = "azure"

    def __init__(
        self,
        container: str,
        *,
        credentials: Credentials | None = None,
        account_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__(container, credentials, endpoint_url)
        creds = self.credentials
        self._sas_token: str | None = None
        options: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10}
        if creds.azure_storage_connection_string:
            try:
                self._service = BlobServiceClient.from_connection_string(
                    creds.azure_storage_connection_string, **options
                )
            except ValueError:
                raise StorageAuthError("azure: AZURE_STORAGE_CONNECTION_STRING is malformed") from None
        else:
            name = account_name or creds.azure_storage_account_name
            if not name:
                raise StorageAuthError(
                    "azure: no credentials (set AZURE_STORAGE_CONNECTION_STRING, or the account name with "
                    "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN)"
                )
            url = self.endpoint_url or f"https://{name}.blob.core.windows.net"
            credential: Any
            if creds.azure_storage_account_key:
                credential = {"account_name": name, "account_key": creds.azure_storage_account_key}
            elif creds.azure_storage_sas_token:
                self._sas_token = creds.azure_storage_sas_token.lstrip("?")
                credential = self._sas_token
            else:
                raise StorageAuthError(
                    "azure: account name given without AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN"
                )
            self._service = BlobServiceClient(account_url=url, credential=credential, **options)
        self._container = self._service.get_container_client(container)

    @property
    def account_name(self) -> str:
        return cast(str, self._service.account_name)

    def _translate(self, exc: Exception, key: str | None = None) -> StorageError:
        where = f"azure-blob://{self.bucket}" + (f"/{key}" if key else "")
        code = getattr(exc, "error_code", None) or ""
        if isinstance(exc, ResourceNotFoundError):
            if key is None or code == "ContainerNotFound":
                return BucketNotFoundError(f"{where}: container '{self.bucket}' does not exist")
            return ObjectNotFoundError(f"{where}: blob not found")
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
        ):
            return StorageAuthError(
                f"{where}: access denied ({code or 'authentication failed'}); "
                "check the account key, SAS or connection string"
            )
        if isinstance(exc, ServiceRequestError):
            return StorageError(f"{where}: cannot reach the Azure Blob endpoint {self._service.url}")
        if isinstance(exc, HttpResponseError):
            return StorageError(f"{where}: Azure error {exc.status_code} {code}".rstrip())
        return StorageError(f"{where}: {type(exc).__name__}")

    def iter_objects(self, prefix: str = "", *, recursive: bool = True, page_size: int = 1000) -> Iterator[ObjectInfo]:
        try:
            items: Iterable[BlobProperties | BlobPrefix]  # a non-recursive walk also yields prefixes
            if recursive:
                items = self._container.list_blobs(name_starts_with=prefix or None, results_per_page=page_size)
            else:
                items = self._container.walk_blobs(
                    name_starts_with=prefix or None, delimiter="/", results_per_page=page_size
                )
            for blob in items:  # ItemPaged fetches one page at a time
                if not isinstance(blob, BlobProperties) or blob.name.endswith("/"):
                    continue  # BlobPrefix entries of a non-recursive walk
                yield ObjectInfo(
                    key=blob.name,
                    etag=str(blob.etag or "").strip('"'),
                    size=int(blob.size or 0),
                    last_modified=blob.last_modified,
                )
        except AzureError as exc:
            raise self._translate(exc) from None

    def read(self, key: str) -> bytes:
        try:
            return self._container.download_blob(key).readall()
        except AzureError as exc:
            raise self._translate(exc, key) from None

    def open(self, key: str) -> BinaryIO:
        try:
            return cast(BinaryIO, _BlobStream(self._container.download_blob(key)))
        except AzureError as exc:
            raise self._translate(exc, key) from None

    def presign(self, key: str, ttl_seconds: int) -> str:
        blob = self._container.get_blob_client(key)
        account_key = getattr(self._service.credential, "account_key", None)
        if account_key:
            now = datetime.now(UTC)
            sas = generate_blob_sas(
                account_name=self.account_name,
                container_name=self.bucket,
                blob_name=key,
                account_key=account_key,
                permission=BlobSasPermissions(read=True),
                start=now - timedelta(minutes=5),  # tolerate clock skew
                expiry=now + timedelta(seconds=int(ttl_seconds)),
            )
            return f"{blob.url}?{sas}"
        if self._sas_token:
            return blob.url if "sig=" in blob.url else f"{blob.url}?{self._sas_token}"
        raise PresignUnsupportedError(f"azure-blob://{self.bucket}: presigning needs an account key or a SAS token")

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        try:
            result = self._container.get_blob_client(key).upload_blob(
                data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )
        except AzureError as exc:
            raise self._translate(exc, key) from None
        return str(result.get("etag", "")).strip('"')

    def upload(self, key: str, stream: BinaryIO, size: int, content_type: str) -> str:
        try:
            result = self._container.get_blob_client(key).upload_blob(
                stream, length=size, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )
        except AzureError as exc:
            raise self._translate(exc, key) from None
        return str(result.get("etag", "")).strip('"')

    def delete(self, key: str) -> None:
        try:
            self._container.delete_blob(key)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                raise self._translate(exc, key) from None
        except AzureError as exc:
            raise self._translate(exc, key) from None

    def validate(self) -> None:
        try:
            self._container.get_container_properties()
        except HttpResponseError as exc:
            # A container-scoped SAS cannot read container properties; listing is what a sync needs.
            if exc.status_code != 403 or not self._sas_token:
                raise self._translate(exc) from None
        except AzureError as exc:
            raise self._translate(exc) from None
        try:
            next(iter(self._container.list_blobs(results_per_page=1)), None)
        except AzureError as exc:
            raise self._translate(exc) from None

    def close(self) -> None:
        self._service.close()
