"""Media reads stay inside the project's storages: their bucket, and their prefix after the key is checked."""

from __future__ import annotations

import httpx
import pytest

from api_server.storages.presign import encode_fileuri
from tests.integration.storage.test_storage_api import IMAGE_CONFIG, make_project, storage_fields
from tests.support.labeling import import_tasks

SCHEME = {"s3": "s3", "gcs": "gs", "azure": "azure-blob"}
SECRET = b"secret bytes of another prefix"


def _storage(api: httpx.Client, env, project: int, bucket: str, prefix: str) -> None:
    body = {"project": project, "prefix": prefix, "use_blob_urls": True, **storage_fields(env, bucket)}
    r = api.post(f"/api/storages/{env.kind}/", json=body)
    assert r.status_code == 201, r.text


def _refused(r: httpx.Response) -> None:
    assert r.status_code in (403, 404), (r.status_code, r.headers.get("location"), r.text[:200])
    assert "fileuri" in r.json()["detail"]
    assert SECRET not in r.content


def test_presign_reads_only_inside_the_storage_prefix(api, storage_env):
    env, scheme = storage_env, SCHEME[storage_env.kind]
    bucket, other_bucket = env.new_bucket(), env.new_bucket()
    env.provider(bucket).write("allowed/ok.txt", b"ok", "text/plain")
    env.provider(bucket).write("private/secret.txt", SECRET, "text/plain")
    env.provider(other_bucket).write("secret.txt", SECRET, "text/plain")
    project = make_project(api, IMAGE_CONFIG)
    _storage(api, env, project, bucket, "allowed/")
    path = f"/api/projects/{project}/presign/"

    r = api.get(path, params={"fileuri": f"{scheme}://{bucket}/allowed/ok.txt"})
    assert r.status_code in (200, 303), r.text
    assert (r.content if r.status_code == 200 else httpx.get(r.headers["location"]).content) == b"ok"

    escapes = [
        "private/secret.txt",  # another prefix
        "allowed/../private/secret.txt",
        "allowed/%2e%2e/private/secret.txt",
        "allowed/%252e%252e/private/secret.txt",
        "allowed/..%2fprivate/secret.txt",
        "allowed/%2E%2E%2Fprivate%2Fsecret.txt",
        "allowed\\..\\private\\secret.txt",
        "allowed//../private/secret.txt",
        "allowed/./ok.txt",
        f"allowed/../../{other_bucket}/secret.txt",  # another bucket, through a path-style URL
    ]
    for key in escapes:
        uri = f"{scheme}://{bucket}/{key}"
        _refused(api.get(path, params={"fileuri": uri}))
        _refused(api.get(path, params={"fileuri": encode_fileuri(uri)}))
    r = api.get(path, params={"fileuri": f"{scheme}://{bucket}/allowed/../private/secret.txt"})
    assert r.status_code == 403

    # A bucket the project has no storage on.
    r = api.get(path, params={"fileuri": f"{scheme}://{other_bucket}/secret.txt"})
    _refused(r)
    assert r.status_code == 404


@pytest.mark.parametrize("prefix", ["data", "data/"])
def test_a_prefix_names_a_folder(api, moto_s3, prefix):
    bucket = moto_s3.new_bucket()
    moto_s3.provider(bucket).write("data2/secret.txt", SECRET, "text/plain")
    moto_s3.provider(bucket).write("data/ok.txt", b"ok", "text/plain")
    project = make_project(api, IMAGE_CONFIG)
    _storage(api, moto_s3, project, bucket, prefix)
    path = f"/api/projects/{project}/presign/"
    assert api.get(path, params={"fileuri": f"s3://{bucket}/data/ok.txt"}).status_code == 303
    _refused(api.get(path, params={"fileuri": f"s3://{bucket}/data2/secret.txt"}))


def test_another_projects_storage_is_never_reachable(api, moto_s3):
    bucket, theirs = moto_s3.new_bucket(), moto_s3.new_bucket()
    moto_s3.provider(theirs).write("x/secret.txt", SECRET, "text/plain")
    mine = make_project(api, IMAGE_CONFIG)
    _storage(api, moto_s3, mine, bucket, "")
    other = make_project(api, IMAGE_CONFIG)
    _storage(api, moto_s3, other, theirs, "")
    uri = f"s3://{theirs}/x/secret.txt"
    [task] = import_tasks(api, mine, [{"image": uri}])

    _refused(api.get(f"/api/projects/{mine}/presign/", params={"fileuri": uri}))
    _refused(api.get(f"/tasks/{task}/presign/", params={"fileuri": encode_fileuri(uri)}))
    _refused(api.get(f"/api/tasks/{task}/presign/", params={"fileuri": uri}))
    # The project that owns the storage reads it.
    assert api.get(f"/api/projects/{other}/presign/", params={"fileuri": uri}).status_code == 303
