"""`make run`'s sample: the provisioned project is seeded once, through the import path."""

from __future__ import annotations

from pathlib import Path

from api_server.server import prepare

SAMPLES = Path(__file__).resolve().parents[3] / "api_server" / "samples"


def test_sample_tasks_load_once(server_pool):
    server = server_pool.new(
        "sqlite", KUBELABEL_PROJECT_FILE=str(SAMPLES / "project.json"), KUBELABEL_SEED_TASKS=str(SAMPLES / "tasks.json")
    )
    with server.client() as api:
        project = api.get("/api/projects/1/").json()
        assert project["title"].startswith("Sample")
        assert project["task_number"] == 10
        first = api.get("/api/tasks/", params={"project": 1, "page_size": 1}).json()["tasks"][0]
        assert first["inner_id"] == 1 and first["overlap"] == 1
    # A restart (a second bootstrap on the same database) adds nothing.
    prepare(server.settings)
    with server.client() as api:
        assert api.get("/api/projects/1/").json()["task_number"] == 10
