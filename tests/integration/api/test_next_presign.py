"""The label stream hands out bucket media through the presign endpoint, as Label Studio does."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlparse

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="kind" toName="image"><Choice value="Cat"/><Choice value="Dog"/></Choices>
</View>"""


def test_next_rewrites_storage_uris(api):
    project = api.post("/api/projects/", json={"title": "img", "label_config": IMAGE_CONFIG}).json()
    tasks = [{"image": "s3://pets/cat 1.jpg"}]
    assert api.post(f"/api/projects/{project['id']}/import", json=tasks).status_code == 201

    task = api.get(f"/api/projects/{project['id']}/next").json()
    url = urlparse(task["data"]["image"])
    assert url.path == f"/tasks/{task['id']}/presign/"
    fileuri = unquote(parse_qs(url.query)["fileuri"][0])
    padded = fileuri + "=" * (-len(fileuri) % 4)
    assert base64.urlsafe_b64decode(padded).decode() == "s3://pets/cat 1.jpg"
    # Task reads rewrite it the same way (Label Studio's resolve_uri, on by default); the stored task keeps it.
    assert api.get(f"/api/tasks/{task['id']}/").json()["data"]["image"] == task["data"]["image"]
    listed = api.get("/api/tasks/", params={"project": project["id"]}).json()["tasks"]
    assert listed[0]["data"]["image"] == task["data"]["image"]
    raw = api.get(f"/api/tasks/{task['id']}/", params={"resolve_uri": "false"}).json()
    assert raw["data"]["image"] == "s3://pets/cat 1.jpg"
