"""Amazon S3 and S3-compatible stores (MinIO, Ceph RGW, ...) through boto3."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, cast
from urllib.parse import unquote_plus

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from api_server.common import egress
from api_server.storages.providers.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    StorageAuthError,
    StorageError,
    StorageProvider,
)
from api_server.storages.providers.credentials import Credentials

_AUTH_CODES = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
_NO_BUCKET_CODES = {"404", "NoSuchBucket"}
_PAGE_LIMIT = 64 << 20  # bytes of one listing page (1,000 keys are a few hundred KB)


class S3Provider(StorageProvider):
    scheme = "s3"
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        sse_kms_key_id: str | None = None,
        signature_version: str = "s3v4",
    ) -> None:
        super().__init__(bucket, credentials, endpoint_url)
        creds = self.credentials
        self.sse_kms_key_id = sse_kms_key_id or None
        # Without explicit keys boto3's default chain applies (env, web identity / IRSA, instance role).
        session = boto3.session.Session(
            aws_access_key_id=creds.aws_access_key_id,
            aws_secret_access_key=creds.aws_secret_access_key,
            aws_session_token=creds.aws_session_token,
            region_name=region or "us-east-1",
        )
        config = Config(
            # "s3" (SigV2) only for old S3-compatible stores that lack SigV4.
            signature_version=signature_version,
            retries={"max_attempts": 3, "mode": "standard"},
            # Path-style addressing: S3-compatible servers rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            max_pool_connections=32,
        )
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        self._http: httpx.Client | None = None

    # -- errors --------------------------------------------------------------------------
    def _translate(self, exc: Exception, key: str | None = None) -> StorageError:
        where = f"s3://{self.bucket}" + (f"/{key}" if key else "")
        if isinstance(exc, NoCredentialsError):
            return StorageAuthError(
                f"{where}: no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role)"
            )
        if isinstance(exc, EndpointConnectionError):
            return StorageError(f"{where}: cannot reach the S3 endpoint {self.endpoint_url or '(AWS default)'}")
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return self._translate_code(str(error.get("Code", "")), status, str(error.get("Message", "")), key)
        if isinstance(exc, egress.EgressRefused | egress.ResponseTooLarge):
            return StorageError(f"{where}: {exc}")
        if isinstance(exc, httpx.TransportError):
            return StorageError(f"{where}: cannot reach the S3 endpoint {self.endpoint_url or '(AWS default)'}")
        if isinstance(exc, BotoCoreError):
            return StorageError(f"{where}: {type(exc).__name__}: {exc}")
        return StorageError(f"{where}: {type(exc).__name__}")

    def _translate_code(self, code: str, status: int | None, message: str, key: str | None = None) -> StorageError:
        where = f"s3://{self.bucket}" + (f"/{key}" if key else "")
        if (code in _NO_BUCKET_CODES or (not code and status == 404)) and (key is None or code == "NoSuchBucket"):
            return BucketNotFoundError(f"{where}: bucket '{self.bucket}' does not exist")
        if code in {"NoSuchKey", "404"} and key is not None:
            return ObjectNotFoundError(f"{where}: object not found")
        if code in _AUTH_CODES or status == 403:
            return StorageAuthError(
                f"{where}: access denied ({code or status}); check the access key, secret and bucket policy"
            )
        return StorageError(f"{where}: S3 error {code or status}: {message}".rstrip(": "))

    # -- operations ----------------------------------------------------------------------
    def iter_objects(self, prefix: str = "", *, recursive: bool = True, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages fetched through presigned GETs and parsed with ElementTree.

        botocore's response parser costs about 15x more than the listing itself at 1,000 keys
        per page; signing stays botocore's (keys, session tokens, roles), only parsing is ours.
        """
        if self._http is None:
            # Pinned to the addresses the outbound-address policy allows (the endpoint is user-given).
            self._http = egress.client("storage", timeout=60.0, limits=egress.Limits(max_bytes=_PAGE_LIMIT))
        params: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": page_size, "EncodingType": "url"}
        if prefix:
            params["Prefix"] = prefix
        if not recursive:
            params["Delimiter"] = "/"
        while True:
            try:
                url = self._client.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=300)
                response = self._http.get(url)
            except (ClientError, BotoCoreError, httpx.TransportError) as exc:
                raise self._translate(exc) from None
            try:
                root = ET.fromstring(response.content)
            except ET.ParseError:
                raise StorageError(
                    f"s3://{self.bucket}: the listing is not S3 XML (HTTP {response.status_code})"
                ) from None
            if response.status_code >= 400 or root.tag == "Error" or root.tag.endswith("}Error"):
                code = next((e.text or "" for e in root.iter() if e.tag.endswith("Code")), "")
                message = next((e.text or "" for e in root.iter() if e.tag.endswith("Message")), "")
                raise self._translate_code(code, response.status_code, message)
            # Namespace as the server wrote it (S3-compatible servers do not all use AWS's).
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            # Keys are URL-encoded only when the server says so (some ignore encoding-type).
            encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
            for item in root.iter(f"{ns}Contents"):
                raw = item.findtext(f"{ns}Key") or ""
                key = unquote_plus(raw) if encoded else raw
                size = int(item.findtext(f"{ns}Size") or 0)
                if key.endswith("/") and size == 0:
                    continue  # "folder" placeholder objects
                modified = item.findtext(f"{ns}LastModified")
                yield ObjectInfo(
                    key=key,
                    etag=(item.findtext(f"{ns}ETag") or "").strip('"'),
                    size=size,
                    last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
                )
            token = root.findtext(f"{ns}NextContinuationToken")
            if (root.findtext(f"{ns}IsTruncated") or "").lower() != "true" or not token:
                return
            params["ContinuationToken"] = token

    def _get(self, key: str) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self._client.get_object(Bucket=self.bucket, Key=key))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from None

    def read(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        try:
            return cast(bytes, body.read())
        finally:
            body.close()

    def open(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._get(key)["Body"])

    def presign(self, key: str, ttl_seconds: int) -> str:
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(ttl_seconds)
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from None

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        extra: dict[str, Any] = {}
        if self.sse_kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}
        try:
            response = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from None
        return str(response.get("ETag", "")).strip('"')

    def upload(self, key: str, stream: BinaryIO, size: int, content_type: str) -> str:
        # upload_fileobj reads the stream in parts (a multipart upload past 8 MiB).
        extra: dict[str, Any] = {"ContentType": content_type}
        if self.sse_kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.sse_kms_key_id)
        try:
            self._client.upload_fileobj(stream, self.bucket, key, ExtraArgs=extra)
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key) from None
        return str(head.get("ETag", "")).strip('"')

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            error = self._translate(exc, key)
            if not isinstance(error, ObjectNotFoundError):
                raise error from None

    def validate(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            # head_bucket may pass with list permission missing; a one-key listing proves read access.
            self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc) from None

    def close(self) -> None:
        self._client.close()
        if self._http is not None:
            self._http.close()
