from __future__ import annotations

import json

import pytest

from api_server.storages.bucket_export import object_key
from api_server.storages.config import StorageConfig, credentials_from_fields, credentials_to_fields
from api_server.storages.import_sync import ImportItem, SyncProgress, _as_task
from api_server.storages.presign import decode_fileuri, encode_fileuri, resolve_task_data, split_uri
from api_server.storages.providers import Credentials, StorageError
from api_server.storages.sync_job import JobEnv, storage_body


def test_cr_spec_maps_to_label_studio_settings():
    direction, config = StorageConfig.from_cr_spec(
        {
            "projectRef": {"name": "p"},
            "provider": "azure",
            "bucket": "frames",
            "prefix": "2024/",
            "filter": {"regex": r".*\.png$"},
            "mode": "objects",
            "presignTtlMinutes": 30,
            "endpoint": "http://127.0.0.1:10000/devstoreaccount1",
        }
    )
    assert direction == "import"
    settings = config.to_settings()
    assert settings["container"] == "frames" and "bucket" not in settings
    assert settings["use_blob_urls"] is True and settings["presign_ttl"] == 30
    assert settings["regex_filter"] == r".*\.png$"
    assert StorageConfig.from_settings("azure", settings) == config


def test_export_spec_and_task_mode():
    direction, config = StorageConfig.from_cr_spec(
        {"provider": "s3", "bucket": "b", "direction": "export", "mode": "tasks"}
    )
    assert direction == "export" and config.use_blob_urls is False
    assert config.to_settings()["s3_endpoint"] is None
    _, tasks = StorageConfig.from_cr_spec({"provider": "gcs", "bucket": "b", "mode": "tasks"})
    assert tasks.use_blob_urls is False and tasks.scheme == "gs"


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"provider": "ftp", "bucket": "b"}, "unknown storage type"),
        ({"provider": "s3", "bucket": ""}, "bucket"),
        ({"provider": "s3", "bucket": "b", "filter": {"regex": "(["}}, "invalid regex"),
        ({"provider": "s3", "bucket": "b", "direction": "sideways"}, "direction"),
    ],
)
def test_bad_specs_are_clear(spec, message):
    with pytest.raises(StorageError, match=message):
        StorageConfig.from_cr_spec(spec)


def test_credentials_fields_round_trip():
    creds = Credentials(aws_access_key_id="AK", aws_secret_access_key="SK")
    fields = credentials_to_fields("s3", creds)
    assert fields == {"aws_access_key_id": "AK", "aws_secret_access_key": "SK"}
    back = credentials_from_fields("s3", fields)
    assert back == creds
    azure = credentials_from_fields("azure", {"account_name": "acct", "account_key": "k"})
    assert azure.azure_storage_account_name == "acct" and azure.azure_storage_account_key == "k"
    assert credentials_to_fields("gcs", creds) == {}


def test_job_env_and_storage_body(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "KUBELABEL_API_URL": "http://api:8080",
        "KUBELABEL_API_TOKEN": "t",
        "KUBELABEL_STORAGE_NAME": "ns/s",
        "KUBELABEL_STORAGE_SPEC": json.dumps({"provider": "s3", "bucket": "b"}),
        "KUBELABEL_SYNC_SHARE_CREDENTIALS": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job = JobEnv.from_environ()
    assert job.project_id == 1 and job.share_credentials is False and job.batch_size == 1000
    _, config = StorageConfig.from_cr_spec(job.spec)
    creds = Credentials(aws_access_key_id="AK", aws_secret_access_key="SK")
    assert "aws_secret_access_key" not in storage_body(job, config, creds, share=False)
    shared = storage_body(job, config, creds, share=True)
    assert shared["aws_secret_access_key"] == "SK" and shared["external_name"] == "ns/s" and shared["project"] == 1
    monkeypatch.setenv("KUBELABEL_STORAGE_SPEC", "{")
    with pytest.raises(ValueError, match="^KUBELABEL_STORAGE_SPEC is not JSON"):
        JobEnv.from_environ()
    monkeypatch.setenv("KUBELABEL_STORAGE_SPEC", "")
    monkeypatch.delenv("KUBELABEL_API_URL")
    with pytest.raises(ValueError, match="^missing environment: KUBELABEL_API_URL, KUBELABEL_STORAGE_SPEC$"):
        JobEnv.from_environ()
    monkeypatch.setenv("KUBELABEL_API_URL", "http://api:8080")
    monkeypatch.setenv("KUBELABEL_STORAGE_SPEC", "{}")
    monkeypatch.setenv("KUBELABEL_SYNC_BATCH_SIZE", "lots")
    with pytest.raises(ValueError, match="^KUBELABEL_SYNC_BATCH_SIZE: "):
        JobEnv.from_environ()


def test_task_shapes():
    assert _as_task({"text": "hi"}) == {"data": {"text": "hi"}}
    full = {"data": {"text": "hi"}, "annotations": [], "predictions": [], "meta": {}, "id": 5}
    assert _as_task(full) == {"data": {"text": "hi"}, "annotations": [], "predictions": [], "meta": {}}
    with pytest.raises(ValueError, match="JSON object"):
        _as_task(["not", "a", "task"])
    assert ImportItem("k", "e").wire() == {"key": "k", "etag": "e", "row": 0}


def test_progress_status_and_line():
    progress = SyncProgress()
    assert progress.status == "completed"
    for i in range(25):
        progress.error(f"e{i}")
    assert progress.status == "completed_with_errors" and len(progress.error_samples) == 20
    assert "errors=25" in progress.line()


def test_fileuri_encoding_and_task_data():
    uri = "s3://bucket/dir/a b+c.jpg"
    assert decode_fileuri(encode_fileuri(uri)) == uri
    assert decode_fileuri(uri) == uri
    assert split_uri("azure-blob://cont/x/y.png") == ("azure", "cont", "x/y.png")
    data = resolve_task_data({"image": "gs://b/k.png", "text": "plain", "n": 3}, task_id=7)
    assert data["image"].startswith("/tasks/7/presign/?fileuri=") and data["text"] == "plain" and data["n"] == 3


def test_export_object_key():
    _, config = StorageConfig.from_cr_spec({"provider": "s3", "bucket": "b", "prefix": "out/"})
    assert object_key(config, 42) == "out/42.json"
    _, bare = StorageConfig.from_cr_spec({"provider": "s3", "bucket": "b"})
    assert object_key(bare, 42) == "42.json"
