"""Secrets are write-only: webhook header values and storage credentials are stored and used, never shown."""

from __future__ import annotations

import httpx
import pytest

from api_server.db.models import ExportStorage, ImportStorage
from tests.support.webhook_receiver import WebhookReceiver

HEADER_SECRET = "Bearer hdr-secret-7Yq2"
SIGNING = "signing-key-0123456789abcdef"
MASK = "********"


def _webhook_reads(api: httpx.Client, hook_id: int, project_id: int) -> list[httpx.Response]:
    reads = [
        api.get(f"/api/webhooks/{hook_id}/"),
        api.get("/api/webhooks/"),
        api.get("/api/webhooks/", params={"project": project_id}),
        api.get(f"/api/webhooks/{hook_id}/deliveries/", params={"include_payload": True}),
    ]
    assert all(r.status_code == 200 for r in reads), [r.text for r in reads]
    return reads


def test_webhook_header_values_are_used_and_never_returned(api, text_project):
    pid = text_project["id"]
    with WebhookReceiver(secret=SIGNING) as receiver:
        body = {"url": receiver.url, "project": pid, "secret": SIGNING, "headers": {"Authorization": HEADER_SECRET}}
        created = api.post("/api/webhooks/", json=body)
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["headers"] == {"Authorization": MASK}

        # PATCH without headers keeps them; the masked headers of a GET sent back keep the values too.
        assert api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": True}).status_code == 200
        r = api.patch(f"/api/webhooks/{hook['id']}/", json={"headers": {**hook["headers"], "X-Team": "labeling"}})
        assert r.status_code == 200 and r.json()["headers"] == {"Authorization": MASK, "X-Team": MASK}, r.text
        assert api.patch(f"/api/projects/{pid}/", json={"title": "Renamed"}).status_code == 200
        (got,) = receiver.wait_for(1)
        assert got.headers["authorization"] == HEADER_SECRET and got.headers["x-team"] == "labeling"
        for read in [created, r, *_webhook_reads(api, hook["id"], pid)]:
            assert HEADER_SECRET not in read.text and "hdr-secret" not in read.text

        # PATCH with headers replaces them all.
        r = api.patch(f"/api/webhooks/{hook['id']}/", json={"headers": {"X-Other": "v"}})
        assert r.json()["headers"] == {"X-Other": MASK}
        assert api.patch(f"/api/projects/{pid}/", json={"title": "Again"}).status_code == 200
        second = receiver.wait_for(2)[1]
        assert "authorization" not in second.headers and second.headers["x-other"] == "v"


STORAGE_SECRETS = {
    "s3": {
        "bucket": "b",
        "aws_access_key_id": "AKIA-id-Secret1",
        "aws_secret_access_key": "aws-secret-Secret2",
        "aws_session_token": "session-token-Secret3",
    },
    "gcs": {"bucket": "b", "google_application_credentials": '{"private_key": "gcs-key-Secret4"}'},
    "azure": {"container": "c", "account_name": "acct", "account_key": "azure-key-Secret5", "sas_token": "sv=Secret6"},
}


@pytest.mark.parametrize("kind", sorted(STORAGE_SECRETS))
@pytest.mark.parametrize("direction", ["import", "export"])
def test_storage_credentials_are_never_returned(api, live_server, text_project, kind, direction):
    pid = text_project["id"]
    base = f"/api/storages/{kind}" if direction == "import" else f"/api/storages/export/{kind}"
    fields = STORAGE_SECRETS[kind]
    created = api.post(base + ("/" if direction == "import" else ""), json={"project": pid, **fields})
    assert created.status_code == 201, created.text
    storage = created.json()
    secret_names = sorted(k for k in fields if k not in ("bucket", "container", "account_name"))
    assert storage["credentials_set"] == secret_names

    # What a GET showed, sent back, changes nothing; a masked credential keeps the stored one.
    patched = api.patch(f"{base}/{storage['id']}", json={**storage, **dict.fromkeys(secret_names, MASK)})
    assert patched.status_code == 200, patched.text
    reads = [
        created,
        patched,
        api.get(f"{base}/{storage['id']}"),
        api.get(base + ("/" if direction == "import" else ""), params={"project": pid}),
        api.get("/api/storages/", params={"project": pid}),
    ]
    for read in reads:
        assert read.status_code == 200 or read is created, read.text
        for name in secret_names:
            assert fields[name] not in read.text and "Secret" not in read.text, (name, read.text)
    assert patched.json()["credentials_set"] == secret_names
    model = ImportStorage if direction == "import" else ExportStorage
    with live_server.session_factory() as session:
        stored = session.get(model, storage["id"])
        assert stored is not None and stored.credentials == {k: fields[k] for k in secret_names}


def test_label_studio_sdk_reads_the_masked_shapes(api, live_server, text_project):
    from label_studio_sdk import LabelStudio

    from tests.support.apiserver import ADMIN_TOKEN

    pid = text_project["id"]
    ls = LabelStudio(base_url=live_server.url, api_key=ADMIN_TOKEN)
    hook = ls.webhooks.create(url="http://127.0.0.1:9/x", project=pid, headers={"Authorization": HEADER_SECRET})
    assert ls.webhooks.get(id=hook.id).headers == {"Authorization": MASK}
    assert [h.id for h in ls.webhooks.list(project=str(pid))] == [hook.id]
    storage = ls.import_storage.s3.create(project=pid, bucket="b", aws_secret_access_key="aws-secret-Secret2")
    got = ls.import_storage.s3.get(id=storage.id)
    assert got.bucket == "b" and not got.aws_secret_access_key
    assert [s.id for s in ls.import_storage.s3.list(project=pid)] == [storage.id]
