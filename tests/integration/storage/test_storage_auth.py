"""Credentials and signatures: wrong keys fail clearly, presigned URLs are really checked."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api_server.storages.providers import (
    Credentials,
    PresignUnsupportedError,
    StorageAuthError,
    make_provider,
)


def _tamper(url: str, param: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    value = query[param]
    query[param] = ("0" if value[0] != "0" else "1") + value[1:]
    return urlunsplit(parts._replace(query=urlencode(query)))


# s3rver verifies SigV2 query signatures only: its SigV4 check is unimplemented (it accepts any
# SigV4 signature from a known access key) and its SigV2 header check rejects botocore's requests.
# So bucket operations use SigV4 and the signature checks use presigned SigV2 URLs.
def test_s3_presigned_url_signature_is_checked(s3rver):
    bucket = s3rver.new_bucket()
    s3rver.provider(bucket).write("doc.txt", b"secret text", "text/plain")
    url = s3rver.provider(bucket, signature_version="s3").presign("doc.txt", 60)
    assert httpx.get(url).content == b"secret text"
    assert httpx.get(_tamper(url, "Signature")).status_code == 403
    # The signature covers the key: pointing the URL at another object fails.
    s3rver.provider(bucket).write("doc2.txt", b"other", "text/plain")
    assert httpx.get(url.replace("/doc.txt?", "/doc2.txt?")).status_code == 403
    assert [o.key for o in s3rver.provider(bucket).iter_objects()] == ["doc.txt", "doc2.txt"]


def test_s3_presigned_url_with_wrong_secret_is_refused(s3rver):
    bucket = s3rver.new_bucket()
    s3rver.provider(bucket).write("doc.txt", b"secret text", "text/plain")
    bad = Credentials(aws_access_key_id="S3RVER", aws_secret_access_key="wrong-secret")
    url = s3rver.provider(bucket, bad, signature_version="s3").presign("doc.txt", 60)
    assert httpx.get(url).status_code == 403


def test_s3_unknown_access_key_fails_clearly(s3rver):
    bucket = s3rver.new_bucket()
    provider = s3rver.provider(bucket, Credentials(aws_access_key_id="NOPE", aws_secret_access_key="wrong-secret"))
    with pytest.raises(StorageAuthError, match="access denied") as info:
        provider.validate()
    assert "wrong-secret" not in str(info.value)
    with pytest.raises(StorageAuthError):
        provider.write("x.json", b"{}")
    # Nothing was written with the bad credentials.
    assert list(s3rver.provider(bucket).iter_objects()) == []


def test_azure_sas_presign_is_checked(azurite):
    provider = azurite.provider(azurite.new_bucket())
    provider.write("a/b.txt", b"blob body", "text/plain")
    url = provider.presign("a/b.txt", 60)
    assert "sig=" in url and "sp=r" in url
    assert httpx.get(url).content == b"blob body"
    assert httpx.get(_tamper(url, "sig")).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code in (403, 404)  # no anonymous access


def test_azure_wrong_account_key_fails_clearly(azurite):
    bucket = azurite.new_bucket()
    bad = Credentials(
        azure_storage_account_name="devstoreaccount1",
        azure_storage_account_key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=",
    )
    provider = make_provider("azure", bucket, credentials=bad, endpoint_url=azurite.endpoint)
    with pytest.raises(StorageAuthError, match="access denied") as info:
        provider.validate()
    assert "d3Jvbmcta2V5" not in str(info.value)


def test_azure_account_key_and_sas_credentials(azurite):
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    bucket = azurite.new_bucket()
    key_creds = Credentials(
        azure_storage_account_name="devstoreaccount1",
        azure_storage_account_key=azurite.credentials.azure_storage_connection_string.split("AccountKey=")[1].split(
            ";"
        )[0],
    )
    by_key = make_provider("azure", bucket, credentials=key_creds, endpoint_url=azurite.endpoint)
    by_key.validate()
    by_key.write("k.txt", b"by key", "text/plain")

    sas = generate_container_sas(
        "devstoreaccount1",
        bucket,
        account_key=key_creds.azure_storage_account_key,
        permission=ContainerSasPermissions(read=True, list=True, write=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sas_creds = Credentials(azure_storage_account_name="devstoreaccount1", azure_storage_sas_token=sas)
    by_sas = make_provider("azure", bucket, credentials=sas_creds, endpoint_url=azurite.endpoint)
    by_sas.validate()
    assert [o.key for o in by_sas.iter_objects()] == ["k.txt"]
    assert by_sas.read("k.txt") == b"by key"
    assert httpx.get(by_sas.presign("k.txt", 60)).content == b"by key"


def _throwaway_service_account() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "kubelabel-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": "sync@kubelabel-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def test_gcs_signed_url(gcs_emulator):
    bucket = gcs_emulator.new_bucket()
    creds = Credentials(google_application_credentials_json=_throwaway_service_account())
    provider = gcs_emulator.provider(bucket, creds)
    provider.write("img/dog.jpg", b"jpeg bytes", "image/jpeg")
    url = provider.presign("img/dog.jpg", 120)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "120"
    assert query["X-Goog-Credential"].startswith("sync@kubelabel-test.iam.gserviceaccount.com/")
    assert url.startswith(gcs_emulator.endpoint)
    # The emulator serves the object at the signed path (it does not verify signatures).
    assert httpx.get(url).content == b"jpeg bytes"


def test_gcs_presign_without_key_is_unsupported(gcs_emulator):
    provider = gcs_emulator.provider(gcs_emulator.new_bucket())
    with pytest.raises(PresignUnsupportedError, match="service-account key"):
        provider.presign("x", 60)


def test_gcs_malformed_service_account_fails_clearly(gcs_emulator):
    with pytest.raises(StorageAuthError, match="not a valid service-account key") as info:
        gcs_emulator.provider("any", Credentials(google_application_credentials_json='{"type": "oops-secret"}'))
    assert "oops-secret" not in str(info.value)


def test_s3rver_listing_with_special_keys(s3rver):
    # s3rver writes its own XML namespace and ignores encoding-type=url: keys must still come back intact.
    bucket = s3rver.new_bucket()
    provider = s3rver.provider(bucket)
    keys = ["a b+c.txt", "x/ü & y.txt"]
    for key in keys:
        provider.write(key, b"1", "text/plain")
    assert sorted(o.key for o in provider.iter_objects()) == sorted(keys)
