"""Builders: golden files for every child (KUBELABEL_UPDATE_GOLDEN=1 rewrites them) and key properties."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubelabel_operator.builders import mlbackend, project, storage
from kubelabel_operator.builders.meta import Owner
from kubelabel_operator.models import LabelingProjectSpec, MLBackendSpec, StorageConnectionSpec

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KUBELABEL_UPDATE_GOLDEN") == "1"
IMAGE = "ghcr.io/kubelabel/kubelabel:0.1.0"


def example(file: str, name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((ROOT / "manifests" / "examples" / file).read_text()):
        if doc and doc["metadata"]["name"] == name and doc["apiVersion"].startswith("kubelabel.io"):
            return doc  # type: ignore[no-any-return]
    raise KeyError(name)


def owner(kind: str, name: str) -> Owner:
    return Owner(kind=kind, name=name, namespace="labeling", uid=f"uid-{name}")


def check_golden(name: str, objects: list[dict[str, Any] | None]) -> None:
    text = yaml.safe_dump_all([o for o in objects if o is not None], sort_keys=False, width=110)
    path = GOLDEN / f"{name}.yaml"
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path} did not exist and was written; review and commit it")
    assert text == path.read_text(), f"{path} differs: rerun with KUBELABEL_UPDATE_GOLDEN=1 if intended"


def project_children(file: str, name: str) -> list[dict[str, Any] | None]:
    spec = LabelingProjectSpec.model_validate(example(file, name)["spec"])
    o = owner("LabelingProject", name)
    xml = spec.label_config.inline or ""
    return [
        project.config_map(o, spec, xml),
        project.admin_token_secret(o, "0" * 64),
        project.data_pvc(o, spec),
        project.deployment(o, spec, IMAGE, project.config_hash(spec, xml)),
        project.service(o, spec),
        project.ingress(o, spec),
        project.disruption_budget(o, spec),
        project.worker_deployment(o, spec, IMAGE, project.config_hash(spec, xml)),
    ]


def test_golden_minimal_project() -> None:
    check_golden("project-minimal", project_children("01-minimal-project.yaml", "sentiment"))


def test_golden_postgres_project() -> None:
    check_golden("project-postgres", project_children("02-postgres-project.yaml", "images"))


def test_golden_storage() -> None:
    raw = example("03-s3-storage.yaml", "street-photos")
    spec = StorageConnectionSpec.model_validate(raw["spec"])
    o = owner("StorageConnection", "street-photos")
    scheduled = spec.model_copy(update={"schedule": "0 * * * *"})
    check_golden("storage", [storage.sync_job(o, spec, IMAGE, 1), storage.sync_cronjob(o, scheduled, IMAGE)])


def test_golden_ml_backends() -> None:
    managed = MLBackendSpec.model_validate(example("04-ml-backend.yaml", "sentiment-model")["spec"])
    o = owner("MLBackend", "sentiment-model")
    check_golden(
        "mlbackend-managed",
        [mlbackend.deployment(o, managed, IMAGE), mlbackend.service(o, managed), mlbackend.models_pvc(o, managed)],
    )


def test_project_json_uses_label_studio_field_names() -> None:
    spec = LabelingProjectSpec.model_validate(example("02-postgres-project.yaml", "images")["spec"])
    data = project.project_json(spec, "<View/>")
    assert data == {
        "title": "Street scene bounding boxes",
        "description": "Cars, people and bicycles in street photos.",
        "expert_instruction": "Draw a tight box around every visible object.",
        "label_config": "<View/>",
        "maximum_annotations": 2,
        "sampling": "Uniform sampling",
        "show_skip_button": True,
        "review_required": True,
        "webhooks": [
            {
                "url": "https://hooks.example.com/kubelabel",
                "actions": ["ANNOTATION_CREATED", "ANNOTATION_UPDATED"],
                "secret_env": "KUBELABEL_WEBHOOK_SECRET_0",
            }
        ],
    }


def test_deployment_env_secrets_come_from_refs_only() -> None:
    spec = LabelingProjectSpec.model_validate(example("02-postgres-project.yaml", "images")["spec"])
    dep = project.deployment(owner("LabelingProject", "images"), spec, IMAGE, "h")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "images-db", "key": "dsn"}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "images-redis", "key": "url"}
    assert env["KUBELABEL_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "images-admin-token", "key": "token"}
    assert env["KUBELABEL_WEBHOOK_SECRET_0"]["valueFrom"]["secretKeyRef"]["name"] == "images-webhook"
    assert all("value" not in e or "change-me" not in e["value"] for e in container["env"])
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate"} and dep["spec"]["replicas"] == 2
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_sqlite_project_gets_a_pvc_and_recreate() -> None:
    spec = LabelingProjectSpec.model_validate(example("01-minimal-project.yaml", "sentiment")["spec"])
    o = owner("LabelingProject", "sentiment")
    dep = project.deployment(o, spec, IMAGE, "h")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["value"] == "sqlite:////data/kubelabel.db"
    assert project.data_pvc(o, spec)["metadata"]["name"] == "sentiment-data"  # type: ignore[index]
    assert project.ingress(o, spec) is None


def test_config_hash_follows_the_spec() -> None:
    spec = LabelingProjectSpec.model_validate(example("01-minimal-project.yaml", "sentiment")["spec"])
    changed = spec.model_copy(update={"title": "Other"})
    xml = spec.label_config.inline or ""
    assert project.config_hash(spec, xml) == project.config_hash(spec, xml)
    assert project.config_hash(spec, xml) != project.config_hash(changed, xml)
    assert project.config_hash(spec, xml) != project.config_hash(spec, xml + " ")


def test_admin_token_secret_holds_the_token_only() -> None:
    secret = project.admin_token_secret(owner("LabelingProject", "p"), "abc123")
    assert base64.b64decode(secret["data"]["token"]) == b"abc123"
    assert set(secret["data"]) == {"token"}


def test_children_never_carry_the_instance_label() -> None:
    children = [c for c in project_children("02-postgres-project.yaml", "images") if c is not None]
    assert len(children) == 7  # no PVC with PostgreSQL; a worker because Redis is set; a PDB for 2 replicas
    for child in children:
        assert "app.kubernetes.io/instance" not in child["metadata"]["labels"]
        assert child["metadata"]["ownerReferences"][0]["uid"] == "uid-images"


def test_sync_job_contract_env_and_credentials_as_files() -> None:
    spec = StorageConnectionSpec.model_validate(example("03-s3-storage.yaml", "street-photos")["spec"])
    job = storage.sync_job(owner("StorageConnection", "street-photos"), spec, IMAGE, 3)
    assert job["metadata"]["name"] == "street-photos-sync-3"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert container["command"] == ["kubelabel"] and container["args"] == ["sync"]
    assert env["KUBELABEL_API_URL"]["value"] == "http://images-api.labeling.svc:8080"
    assert env["KUBELABEL_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "images-admin-token", "key": "token"}
    assert env["KUBELABEL_PROJECT_ID"]["value"] == "1"
    assert env["KUBELABEL_STORAGE_NAME"]["value"] == "labeling/street-photos"
    assert json.loads(env["KUBELABEL_STORAGE_SPEC"]["value"])["bucket"] == "street-photos"
    assert env["KUBELABEL_STORAGE_CREDENTIALS_DIR"]["value"] == "/var/run/secrets/kubelabel/storage"
    assert {"name": "credentials", "secret": {"secretName": "street-photos-s3", "defaultMode": 0o440}} in pod["volumes"]
    assert pod["restartPolicy"] == "Never"


def test_gpu_backend_asks_for_nvidia_gpus() -> None:
    spec = MLBackendSpec.model_validate({"projectRef": {"name": "p"}, "managed": {"gpu": 2}})
    dep = mlbackend.deployment(owner("MLBackend", "m"), spec, IMAGE)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["args"] == ["model-server", "--host", "0.0.0.0", "--port", "9090"]
    assert container["image"] == IMAGE
    assert mlbackend.url(owner("MLBackend", "m"), spec) == "http://m-model.labeling.svc:9090"


def test_every_child_is_a_valid_kubernetes_object() -> None:
    """kubernetes-validate (bundled upstream schemas, strict: unknown fields fail) on every golden file."""
    import kubernetes_validate

    for path in sorted(GOLDEN.glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(obj, "1.32", strict=True)


def test_migrations_run_in_an_init_container_before_the_server() -> None:
    spec = LabelingProjectSpec.model_validate(example("02-postgres-project.yaml", "images")["spec"])
    pod = project.deployment(owner("LabelingProject", "images"), spec, IMAGE, "h")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"] == ["migrate"]
    assert {e["name"] for e in init["env"]} == {"DATABASE_URL", "KUBELABEL_DATA_DIR"}
    assert "--no-migrate" in pod["containers"][0]["args"]


def test_worker_only_with_redis_and_postgres() -> None:
    spec = LabelingProjectSpec.model_validate(example("02-postgres-project.yaml", "images")["spec"])
    o = owner("LabelingProject", "images")
    worker = project.worker_deployment(o, spec, IMAGE, "h")
    assert worker is not None
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker"] and "ports" not in container
    env = {e["name"] for e in container["env"]}
    assert {"DATABASE_URL", "REDIS_URL"} <= env
    # Its own selector: the API Service never routes to workers.
    assert worker["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert project.worker_deployment(o, spec.model_copy(update={"redis": None}), IMAGE, "h") is None
    minimal = LabelingProjectSpec.model_validate(example("01-minimal-project.yaml", "sentiment")["spec"])
    assert project.worker_deployment(owner("LabelingProject", "sentiment"), minimal, IMAGE, "h") is None


def test_disruption_budget_only_with_more_than_one_replica() -> None:
    spec = LabelingProjectSpec.model_validate(example("02-postgres-project.yaml", "images")["spec"])
    o = owner("LabelingProject", "images")
    assert spec.server.replicas > 1
    pdb = project.disruption_budget(o, spec)
    assert pdb is not None and pdb["metadata"]["name"] == "images-api"
    assert pdb["spec"]["maxUnavailable"] == 1
    # The API Deployment's own selector: the budget covers its pods, never the worker's.
    assert pdb["spec"]["selector"] == project.deployment(o, spec, IMAGE, "h")["spec"]["selector"]
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == "uid-images"
    for replicas in (1, 0):
        server = spec.server.model_copy(update={"replicas": replicas})
        assert project.disruption_budget(o, spec.model_copy(update={"server": server})) is None
