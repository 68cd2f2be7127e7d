"""The constructor preamble the three providers share (providers.base.StorageProvider.__init__):
an empty bucket refused, credentials defaulted, the endpoint as the SDK uses it."""

from __future__ import annotations

import pytest

from api_server.storages.providers import Credentials, StorageError
from api_server.storages.providers.azure import AzureBlobProvider
from api_server.storages.providers.gcs import EMULATOR_ENV, GCSProvider
from api_server.storages.providers.s3 import S3Provider

AZURITE = Credentials(azure_storage_account_name="devstoreaccount1", azure_storage_account_key="a2V5")


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: S3Provider(""), "s3"),
        (lambda: GCSProvider("", endpoint_url="127.0.0.1:9"), "gcs"),
        (lambda: AzureBlobProvider("", credentials=AZURITE), "azure"),
    ],
)
def test_an_empty_bucket_is_refused_by_every_provider(make, kind):
    with pytest.raises(StorageError, match=f"{kind}: bucket/container name is empty"):
        make()


def test_endpoints_lose_their_trailing_slash_and_gcs_may_omit_the_scheme(monkeypatch):
    monkeypatch.delenv(EMULATOR_ENV, raising=False)
    assert S3Provider("b", endpoint_url="http://127.0.0.1:9000/").endpoint_url == "http://127.0.0.1:9000"
    assert S3Provider("b").endpoint_url is None
    assert GCSProvider("b", endpoint_url="127.0.0.1:4443/").endpoint_url == "http://127.0.0.1:4443"
    azure = AzureBlobProvider("c", credentials=AZURITE, endpoint_url="http://127.0.0.1:10000/devstoreaccount1/")
    assert azure.endpoint_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert azure.account_name == "devstoreaccount1"


def test_gcs_falls_back_to_the_emulator_setting(monkeypatch):
    monkeypatch.setenv(EMULATOR_ENV, "127.0.0.1:4443")
    assert GCSProvider("b").endpoint_url == "http://127.0.0.1:4443"


def test_credentials_default_to_none_set():
    provider = S3Provider("b", endpoint_url="http://127.0.0.1:9000")
    assert provider.credentials.present() == []
    assert "a2V5" not in repr(AzureBlobProvider("c", credentials=AZURITE).credentials)
