"""Children of a LabelingProject: ConfigMap, admin-token Secret, Deployment, Service, Ingress, PDB, PVC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from kubelabel_operator.builders.meta import (
    API_PORT,
    CONFIG_HASH_ANNOTATION,
    LOG_ON_ERROR,
    RETAINED_FROM_LABEL,
    RETAINED_UID_ANNOTATION,
    SECRETS_HASH_ANNOTATION,
    Owner,
    container_security_context,
    content_hash,
    labels,
    metadata,
    pod_security_context,
    resources,
    selector,
    service_url,
)
from kubelabel_operator.builders.placement import place
from kubelabel_operator.models.labeling_project import SAMPLING_LABELS, LabelingProjectSpec
from kubelabel_operator.models.pod import PodSettings

COMPONENT = "api"
WORKER_COMPONENT = "worker"
CONFIG_DIR = "/etc/kubelabel"
DATA_DIR = "/data"
TOKEN_KEY = "token"
PROJECT_FILE_KEY = "project.json"
MIGRATE_CONTAINER = "migrate"


def config_map_name(project: str) -> str:
    return f"{project}-config"


def admin_secret_name(project: str) -> str:
    return f"{project}-admin-token"


def worker_name(project: str) -> str:
    return f"{project}-worker"


def api_name(project: str) -> str:
    return f"{project}-api"


def pvc_name(project: str) -> str:
    return f"{project}-data"


def endpoint(project: str, namespace: str) -> str:
    return service_url(api_name(project), namespace, API_PORT)


def webhook_secret_env(index: int) -> str:
    return f"KUBELABEL_WEBHOOK_SECRET_{index}"


def project_json(spec: LabelingProjectSpec, label_config: str) -> dict[str, Any]:
    """project.json in Label Studio field names (read by the API server at start)."""
    return {
        "title": spec.title,
        "description": spec.description,
        "expert_instruction": spec.instructions,
        "label_config": label_config,
        "maximum_annotations": spec.annotation.overlap,
        "sampling": SAMPLING_LABELS[spec.annotation.sampling],
        "show_skip_button": spec.annotation.skip_allowed,
        "review_required": spec.annotation.review_required,
        "webhooks": [
            {
                "url": hook.url,
                "actions": list(hook.events),
                **({"secret_env": webhook_secret_env(i)} if hook.secret_ref else {}),
            }
            for i, hook in enumerate(spec.webhooks)
        ],
    }


def render_project_json(spec: LabelingProjectSpec, label_config: str) -> str:
    return json.dumps(project_json(spec, label_config), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def config_map(owner: Owner, spec: LabelingProjectSpec, label_config: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(config_map_name(owner.name), owner, labels(owner.name, "config")),
        "data": {PROJECT_FILE_KEY: render_project_json(spec, label_config)},
    }


def admin_token_secret(owner: Owner, token: str) -> dict[str, Any]:
    """Created once; a reconcile never rewrites its data (the token is never rotated)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(admin_secret_name(owner.name), owner, labels(owner.name, "admin-token")),
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


_NOT_IN_PODS = {"deletionPolicy", "adoptFrom", "networkPolicy"}  # adoptFrom reaches the pods as the claim's name
_NOT_IN_PODS |= {"backup", "restoreFrom"}  # backups and restores run in pods of their own


def config_hash(spec: LabelingProjectSpec, label_config: str) -> str:
    """Changes with project.json or the spec, so any change rolls the API server pods.

    Not with the fields the pods never see: a new deletion policy (or its default, added by an
    upgrade) restarts nobody.
    """
    wire = {k: v for k, v in spec.wire().items() if k not in _NOT_IN_PODS}
    return content_hash(render_project_json(spec, label_config), wire)


def secrets_hash(values: list[tuple[str, str, str]], key: str) -> str | None:
    """Changes when a referenced Secret key's value does, so a rotated Secret rolls the pods (env from
    a Secret is read only at container start). An HMAC keyed with the project's admin token: the
    annotation, readable by whoever reads Deployments, gives no way to test guesses of a weak password.
    None when the pods read no Secret of the user's."""
    if not values:
        return None
    blob = json.dumps(values, separators=(",", ":")).encode()
    return hmac.new(key.encode(), blob, hashlib.sha256).hexdigest()[:16]


def _secret_env(name: str, ref: Any) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def database_env(spec: LabelingProjectSpec) -> list[dict[str, Any]]:
    """The database the project's pods use (API server, migrations, backups, restores)."""
    env: list[dict[str, Any]] = []
    if spec.database.type == "postgres" and spec.database.postgres is not None:
        env.append(_secret_env("DATABASE_URL", spec.database.postgres.secret_ref))
    else:
        env.append({"name": "DATABASE_URL", "value": f"sqlite:///{DATA_DIR}/kubelabel.db"})
    env.append({"name": "KUBELABEL_DATA_DIR", "value": DATA_DIR})
    return env


def _env(owner: Owner, spec: LabelingProjectSpec) -> list[dict[str, Any]]:
    env = database_env(spec)
    if spec.redis is not None:
        env.append(_secret_env("REDIS_URL", spec.redis.secret_ref))
    env.append(
        {
            "name": "KUBELABEL_ADMIN_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": admin_secret_name(owner.name), "key": TOKEN_KEY}},
        }
    )
    env.append({"name": "KUBELABEL_PROJECT_FILE", "value": f"{CONFIG_DIR}/{PROJECT_FILE_KEY}"})
    env.append({"name": "KUBELABEL_PUBLIC_URL", "value": endpoint(owner.name, owner.namespace)})
    for i, hook in enumerate(spec.webhooks):
        if hook.secret_ref is not None:
            env.append(_secret_env(webhook_secret_env(i), hook.secret_ref))
    return env


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def deployment(
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    hash_: str,
    claim: str | None = None,
    secrets_digest: str | None = None,
    pod_defaults: PodSettings | None = None,
) -> dict[str, Any]:
    """`claim`: the SQLite PVC's name when it is not the project's own (one adopted from another project);
    `secrets_digest`: secrets_hash() of the Secret keys the pods read; `pod_defaults`: the operator's
    defaults under spec.pod."""
    server = spec.server
    sqlite = spec.database.type == "sqlite"
    data_volume: dict[str, Any] = (
        {"name": "data", "persistentVolumeClaim": {"claimName": claim or pvc_name(owner.name)}}
        if sqlite
        else {"name": "data", "emptyDir": {}}
    )
    container: dict[str, Any] = {
        "name": "api",
        "image": server.image or image,
        "imagePullPolicy": server.image_pull_policy,
        "command": ["kubelabel"],
        # Migrations ran in the init container; serving never writes the schema.
        "args": ["serve", "--host", "0.0.0.0", "--port", str(API_PORT), "--no-migrate"],
        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
        "env": _env(owner, spec),
        "startupProbe": _probe("/health", 2, 60),
        "livenessProbe": _probe("/health", 10, 3),
        "readinessProbe": _probe("/ready", 5, 3),
        "resources": resources(server.resources, {"cpu": "100m", "memory": "256Mi"}, {"memory": "1Gi"}),
        "securityContext": container_security_context(),
        "terminationMessagePolicy": LOG_ON_ERROR,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    # Database migrations run once per pod start, before the server: with PostgreSQL an advisory
    # lock inside `kubelabel migrate` makes concurrent pods of a rollout take turns, so there is
    # never more than one migration writer.
    migrate = {
        "name": MIGRATE_CONTAINER,
        "image": container["image"],
        "imagePullPolicy": server.image_pull_policy,
        "command": ["kubelabel"],
        "args": ["migrate"],
        "env": [e for e in container["env"] if e["name"] in {"DATABASE_URL", "KUBELABEL_DATA_DIR"}],
        "resources": container["resources"],
        "securityContext": container_security_context(),
        "terminationMessagePolicy": LOG_ON_ERROR,
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_annotations = {CONFIG_HASH_ANNOTATION: hash_}
    if secrets_digest:
        pod_annotations[SECRETS_HASH_ANNOTATION] = secrets_digest
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(api_name(owner.name), owner, labels(owner.name, COMPONENT)),
        "spec": {
            "replicas": server.replicas,
            # SQLite lives on a ReadWriteOnce volume: never two pods at once.
            "strategy": {"type": "Recreate"} if sqlite else {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector(owner.name, COMPONENT)},
            "template": place(
                {
                    "metadata": {
                        "labels": labels(owner.name, COMPONENT),
                        "annotations": pod_annotations,
                    },
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security_context(),
                        "initContainers": [migrate],
                        "containers": [container],
                        "volumes": [
                            {"name": "config", "configMap": {"name": config_map_name(owner.name)}},
                            data_volume,
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
                spec.pod,
                pod_defaults,
            ),
        },
    }


def worker_deployment(
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    hash_: str,
    secrets_digest: str | None = None,
    pod_defaults: PodSettings | None = None,
) -> dict[str, Any] | None:
    """`kubelabel worker` beside the API when jobs go through Redis (webhooks, syncs, ML calls).

    Only with PostgreSQL: a worker needs the project's database, and SQLite lives on a volume
    that one pod mounts. Without a worker the API server runs the jobs itself.
    """
    if spec.redis is None or spec.database.type != "postgres":
        return None
    worker = deployment(owner, spec, image, hash_, secrets_digest=secrets_digest, pod_defaults=pod_defaults)
    worker["metadata"] = metadata(worker_name(owner.name), owner, labels(owner.name, WORKER_COMPONENT))
    pod_spec = worker["spec"]
    pod_spec["replicas"] = 1
    pod_spec["strategy"] = {"type": "RollingUpdate"}
    pod_spec["selector"] = {"matchLabels": selector(owner.name, WORKER_COMPONENT)}
    pod_spec["template"]["metadata"]["labels"].update(labels(owner.name, WORKER_COMPONENT))
    container = pod_spec["template"]["spec"]["containers"][0]
    container["name"] = "worker"
    container["args"] = ["worker"]
    for probe in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
        container.pop(probe, None)
    return worker


def service(owner: Owner, spec: LabelingProjectSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(api_name(owner.name), owner, labels(owner.name, COMPONENT)),
        "spec": {
            "type": spec.server.service_type,
            "selector": selector(owner.name, COMPONENT),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def ingress(owner: Owner, spec: LabelingProjectSpec) -> dict[str, Any] | None:
    ing = spec.server.ingress
    if ing is None:
        return None
    meta = metadata(api_name(owner.name), owner, labels(owner.name, COMPONENT), dict(ing.annotations or {}))
    body: dict[str, Any] = {
        "rules": [
            {
                "host": ing.host,
                "http": {
                    "paths": [
                        {
                            "path": ing.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": api_name(owner.name), "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ]
    }
    if ing.class_name:
        body["ingressClassName"] = ing.class_name
    if ing.tls_secret_name:
        body["tls"] = [{"hosts": [ing.host], "secretName": ing.tls_secret_name}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": body}


def disruption_budget(owner: Owner, spec: LabelingProjectSpec) -> dict[str, Any] | None:
    """With more than one API server replica, a node drain evicts them one at a time, so the API
    keeps serving. None with one replica (or none): a budget there would only block the drain."""
    if spec.server.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(api_name(owner.name), owner, labels(owner.name, COMPONENT)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner.name, COMPONENT)}},
    }


def data_pvc_metadata(owner: Owner, spec: LabelingProjectSpec, name: str | None = None) -> dict[str, Any]:
    """The SQLite PVC's metadata as the deletion policy wants it (a merge patch: None removes).

    Retain: no owner reference at all, so neither a deletion of the project (any propagation policy,
    an Argo CD prune, the operator down) nor the garbage collector can take the data; labelled
    `retained-from` so a new project of that name (or with `spec.adoptFrom`) finds it.
    Delete: owned by the project, so the garbage collector removes it with the project.
    """
    retain = spec.deletion_policy == "Retain"
    meta = metadata(name or pvc_name(owner.name), owner, labels(owner.name, "data"))
    meta["labels"][RETAINED_FROM_LABEL] = owner.name if retain else None
    meta["annotations"] = {RETAINED_UID_ANNOTATION: owner.uid}
    if retain:
        meta["ownerReferences"] = None
    return meta


def data_pvc(owner: Owner, spec: LabelingProjectSpec) -> dict[str, Any] | None:
    if spec.database.type != "sqlite":
        return None
    body: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.database.storage_size}},
    }
    if spec.database.storage_class_name:
        body["storageClassName"] = spec.database.storage_class_name
    meta = data_pvc_metadata(owner, spec)
    meta["labels"] = {k: v for k, v in meta["labels"].items() if v is not None}
    if meta["ownerReferences"] is None:
        del meta["ownerReferences"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": body}
