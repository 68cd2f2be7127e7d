"""A media link whose object is missing from the bucket answers 404 naming the key, not 500."""

from __future__ import annotations

from tests.integration.storage.test_storage_api import IMAGE_CONFIG, make_project, storage_fields


def test_streamed_media_of_a_missing_object_is_404(api, storage_env):
    env = storage_env
    scheme = {"s3": "s3", "gcs": "gs", "azure": "azure-blob"}[env.kind]
    bucket = env.new_bucket()
    env.provider(bucket).write("media/ok.txt", b"ok", "text/plain")
    project = make_project(api, IMAGE_CONFIG)
    body = {"project": project, "prefix": "media/", "presign": False, **storage_fields(env, bucket)}
    r = api.post(f"/api/storages/{env.kind}/", json=body)
    assert r.status_code == 201, r.text
    path = f"/api/projects/{project}/presign/"
    r = api.get(path, params={"fileuri": f"{scheme}://{bucket}/media/ok.txt"})
    assert (r.status_code, r.content) == (200, b"ok")
    r = api.get(path, params={"fileuri": f"{scheme}://{bucket}/media/missing.txt"})
    assert r.status_code == 404, r.text
    assert "media/missing.txt" in r.json()["detail"]
