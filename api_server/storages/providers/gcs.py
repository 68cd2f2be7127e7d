"""Google Cloud Storage through google-cloud-storage.

Credentials: a service-account JSON (GOOGLE_APPLICATION_CREDENTIALS_JSON) or, without one,
Application Default Credentials (workload identity). An emulator is used when an endpoint
is configured or STORAGE_EMULATOR_HOST is set; the client then talks anonymously, and a
service-account key, when given, is used only to sign URLs locally.

Signed URLs need a private key: with a service-account JSON they are signed locally; with
ADC credentials that name a service account they are signed through the IAM signBlob API;
otherwise presigning raises PresignUnsupportedError.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, BinaryIO, cast

import google.auth
import google.auth.exceptions
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request
from google.cloud import storage
from google.oauth2 import service_account

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

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


def _service_account(credentials_json: str) -> service_account.Credentials:
    try:
        info = json.loads(credentials_json)
        return service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        # The message names the problem, never the content.
        raise StorageAuthError(
            f"gcs: GOOGLE_APPLICATION_CREDENTIALS_JSON is not a valid service-account key ({type(exc).__name__})"
        ) from None


class GCSProvider(StorageProvider):
    scheme = "gs"
    kind = "gcs"

    def __init__(
        self,
        bucket: str,
        *,
        credentials: Credentials | None = None,
        project_id: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__(bucket, credentials, endpoint_url or os.environ.get(EMULATOR_ENV))
        creds = self.credentials
        self._signer: Any = None
        client_credentials: Any
        if creds.google_application_credentials_json:
            self._signer = _service_account(creds.google_application_credentials_json)
            project_id = project_id or self._signer.project_id
        if self.endpoint_url:
            client_credentials = AnonymousCredentials()
        elif self._signer is not None:
            client_credentials = self._signer
        else:
            try:
                client_credentials, default_project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
                )
            except google.auth.exceptions.DefaultCredentialsError:
                raise StorageAuthError(
                    "gcs: no credentials (set GOOGLE_APPLICATION_CREDENTIALS_JSON or use workload identity)"
                ) from None
            project_id = project_id or default_project
        options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
        self._client = storage.Client(
            project=project_id or "kubelabel",
            credentials=client_credentials,
            client_options=options,
            use_auth_w_custom_endpoint=not self.endpoint_url,
        )
        self._bucket = self._client.bucket(bucket)

    def _translate(self, exc: Exception, key: str | None = None) -> StorageError:
        where = f"gs://{self.bucket}" + (f"/{key}" if key else "")
        if isinstance(exc, gexc.NotFound):
            if key is None or "bucket" in str(exc.message).lower():
                return BucketNotFoundError(f"{where}: bucket '{self.bucket}' does not exist")
            return ObjectNotFoundError(f"{where}: object not found")
        if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
            return StorageAuthError(
                f"{where}: access denied ({exc.code}); check the service account and its bucket roles"
            )
        if isinstance(exc, google.auth.exceptions.GoogleAuthError):
            return StorageAuthError(f"{where}: authentication failed ({type(exc).__name__})")
        if isinstance(exc, requests.ConnectionError):
            return StorageError(f"{where}: cannot reach the GCS endpoint {self.endpoint_url or '(Google default)'}")
        if isinstance(exc, gexc.GoogleAPICallError):
            return StorageError(f"{where}: GCS error {exc.code}: {exc.message}")
        return StorageError(f"{where}: {type(exc).__name__}")

    _ERRORS = (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError, requests.RequestException)

    def iter_objects(self, prefix: str = "", *, recursive: bool = True, page_size: int = 1000) -> Iterator[ObjectInfo]:
        try:
            blobs = self._client.list_blobs(
                self._bucket,
                prefix=prefix or None,
                delimiter=None if recursive else "/",
                page_size=page_size,
            )
            for blob in blobs:  # the iterator fetches one page at a time
                if blob.name.endswith("/") and not blob.size:
                    continue
                yield ObjectInfo(
                    key=blob.name,
                    etag=str(blob.generation or blob.etag or ""),
                    size=int(blob.size or 0),
                    last_modified=blob.updated,
                )
        except self._ERRORS as exc:
            raise self._translate(exc) from None

    def read(self, key: str) -> bytes:
        try:
            return cast(bytes, self._bucket.blob(key).download_as_bytes())
        except self._ERRORS as exc:
            raise self._translate(exc, key) from None

    def open(self, key: str) -> BinaryIO:
        try:
            blob = self._bucket.blob(key)
            blob.reload()  # the reader fetches lazily: a missing object fails here, not mid-stream
            return cast(BinaryIO, blob.open("rb"))
        except self._ERRORS as exc:
            raise self._translate(exc, key) from None

    def presign(self, key: str, ttl_seconds: int) -> str:
        blob = self._bucket.blob(key)
        kwargs: dict[str, Any] = {
            "version": "v4",
            "method": "GET",
            "expiration": timedelta(seconds=int(ttl_seconds)),
        }
        if self.endpoint_url:
            kwargs["api_access_endpoint"] = self.endpoint_url
        if self._signer is not None:
            kwargs["credentials"] = self._signer
        else:
            creds = self._client._credentials
            email = getattr(creds, "service_account_email", None)
            if not email or isinstance(creds, AnonymousCredentials):
                raise PresignUnsupportedError(
                    f"gs://{self.bucket}: signing URLs needs a service-account key "
                    "(GOOGLE_APPLICATION_CREDENTIALS_JSON) "
                    "or workload-identity credentials of a service account with iam.serviceAccounts.signBlob"
                )
            try:
                creds.refresh(Request())
            except google.auth.exceptions.GoogleAuthError as exc:
                raise self._translate(exc, key) from None
            kwargs.update(service_account_email=email, access_token=creds.token)
        try:
            return cast(str, blob.generate_signed_url(**kwargs))
        except (ValueError, AttributeError, TypeError) as exc:
            raise PresignUnsupportedError(f"gs://{self.bucket}: cannot sign URLs ({type(exc).__name__})") from None

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        blob = self._bucket.blob(key)
        try:
            blob.upload_from_string(data, content_type=content_type)
        except self._ERRORS as exc:
            raise self._translate(exc, key) from None
        return str(blob.generation or "")

    def upload(self, key: str, stream: BinaryIO, size: int, content_type: str) -> str:
        blob = self._bucket.blob(key)
        try:
            blob.upload_from_file(stream, size=size, content_type=content_type)
        except self._ERRORS as exc:
            raise self._translate(exc, key) from None
        return str(blob.generation or "")

    def delete(self, key: str) -> None:
        try:
            self._bucket.blob(key).delete()
        except gexc.NotFound:
            return
        except self._ERRORS as exc:
            raise self._translate(exc, key) from None

    def validate(self) -> None:
        try:
            # Roles with object access only (no storage.buckets.get): the listing decides.
            with contextlib.suppress(gexc.Forbidden):
                self._bucket.reload()
            next(iter(self._client.list_blobs(self._bucket, max_results=1)), None)
        except self._ERRORS as exc:
            raise self._translate(exc) from None

    def close(self) -> None:
        self._client.close()
