"""kmock's KubernetesEmulator with what a real API server does and kmock 0.8 does not.

- 422 on a failed JSON-patch `test` op (kopf re-reads and retries at once on a 422);
- metadata.uid, resourceVersion (one global counter), creationTimestamp, generation (bumped
  when the spec changes), names from generateName;
- 409 on creating an existing object;
- status subresource semantics: /status patches only touch status, the main endpoint never does;
- a PATCH that changes nothing changes nothing (no new resourceVersion, no watch event);
- `/api/v1` says groupVersion "v1" and lists carry kind/apiVersion (kubectl needs both);
- equality label selectors on lists (`kubectl get -l`, the operator's own lists);
- garbage collection: deleting an owner deletes its dependents (by ownerReferences uid), and an
  object created for an owner that is already gone is deleted right away;
- a bounded request log (kmock's matching is linear in it);
- `/api/v1/namespaces[/name]` parses as the namespaces resource (kmock 0.8 fails on it with a 500).
"""

from __future__ import annotations

import copy
import datetime
import itertools
import secrets
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import dicts, enums, k8s, parsing, rendering

ROOT = Path(__file__).resolve().parents[3]

_parse_path = parsing.parse_path


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (3, 4):
        return parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _parse_path(path)


# kmock reads the namespace from `/namespaces/<ns>/...` and breaks on the namespaces resource itself.
parsing.parse_path = _parse_path_with_namespaces


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _builtin_resources() -> dict[str, kmock.ResourceInfo]:
    rw = {"get", "list", "watch", "create", "update", "patch", "delete"}
    return {
        "v1/namespaces": kmock.ResourceInfo(kind="Namespace", singular="namespace", namespaced=False, verbs=rw),
        "v1/configmaps": kmock.ResourceInfo(kind="ConfigMap", singular="configmap", namespaced=True, verbs=rw),
        "v1/secrets": kmock.ResourceInfo(kind="Secret", singular="secret", namespaced=True, verbs=rw),
        "v1/services": kmock.ResourceInfo(kind="Service", singular="service", namespaced=True, verbs=rw),
        "v1/persistentvolumeclaims": kmock.ResourceInfo(
            kind="PersistentVolumeClaim", singular="persistentvolumeclaim", namespaced=True, verbs=rw
        ),
        # No status subresource for pods here: tests create pods with the status a kubelet would report.
        "v1/pods": kmock.ResourceInfo(kind="Pod", singular="pod", namespaced=True, verbs=rw),
        "v1/events": kmock.ResourceInfo(kind="Event", singular="event", namespaced=True, verbs=rw),
        "apps/v1/deployments": kmock.ResourceInfo(
            kind="Deployment", singular="deployment", namespaced=True, verbs=rw, subresources={"status"}
        ),
        "batch/v1/jobs": kmock.ResourceInfo(
            kind="Job", singular="job", namespaced=True, verbs=rw, subresources={"status"}
        ),
        "batch/v1/cronjobs": kmock.ResourceInfo(
            kind="CronJob", singular="cronjob", namespaced=True, verbs=rw, subresources={"status"}
        ),
        "networking.k8s.io/v1/ingresses": kmock.ResourceInfo(
            kind="Ingress", singular="ingress", namespaced=True, verbs=rw, subresources={"status"}
        ),
        "policy/v1/poddisruptionbudgets": kmock.ResourceInfo(
            kind="PodDisruptionBudget",
            singular="poddisruptionbudget",
            namespaced=True,
            verbs=rw,
            subresources={"status"},
        ),
        "events.k8s.io/v1/events": kmock.ResourceInfo(kind="Event", singular="event", namespaced=True, verbs=rw),
    }


def crd_resources(crd_dir: Path = ROOT / "crds") -> dict[str, kmock.ResourceInfo]:
    """Discovery entries for the generated CRDs, as a real API server would serve them."""
    out = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            out[f"{spec['group']}/{version['name']}/{names['plural']}"] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names["singular"],
                namespaced=spec["scope"] == "Namespaced",
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources=set(version.get("subresources", {})),
            )
    return out


def _error(status: int, reason: str, message: str) -> k8s.KubernetesError:
    return k8s.KubernetesError(status=status, reason=reason, message=message, details={})


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    _rv: itertools.count = attrs.field(factory=lambda: itertools.count(1), init=False)
    _last_rv: int = attrs.field(default=0, init=False)
    _live_uids: set[str] = attrs.field(factory=set, init=False)
    # kmock matches each request against its whole request log (quadratic over a long run):
    # keep only the latest ones, which is all the operator's tests look at.
    keep_requests: int = 20

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for name, info in {**_builtin_resources(), **crd_resources()}.items():
            self.resources[name] = info
        self.objects[kmock.resource("v1/namespaces"), None, "default"] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": self._stamp({"name": "default"}),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    # -- helpers -----------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _stamp(self, meta: dict[str, Any]) -> dict[str, Any]:
        meta.setdefault("uid", str(uuid.uuid4()))
        self._live_uids.add(meta["uid"])
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._next_rv()
        return meta

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo | None:
        for res in self.resources:
            if res == resource:
                return self.resources[res]
        return None

    def _has_status(self, resource: kmock.resource) -> bool:
        info = self._info(resource)
        return info is not None and "status" in info.subresources

    def get_raw(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    # -- mutations ----------------------------------------------------------------------------
    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if len(self._requests) > self.keep_requests:
            del self._requests[: -self.keep_requests]
        if request.resource is not None and request.action in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        ):
            try:
                async with self._lock:
                    if request.action == enums.action.CREATE:
                        await self._create(request)
                    elif request.action == enums.action.UPDATE and request.name is not None:
                        await self._update(request)
                    elif request.action == enums.action.DELETE and request.name is not None:
                        await self._delete((request.resource, request.namespace, request.name))
            except k8s.KubernetesError as exc:
                return await self._render_error(exc)
        # Rendering only: the fallbacks read the state prepared above.
        return await k8s.KubernetesScaffold._handle(self, request)

    async def _emit(self, resource: Any, type_: str, raw: dict[str, Any]) -> None:
        await self._buses[resource].put({"type": type_, "object": copy.deepcopy(raw)})

    async def _create(self, request: rendering.Request) -> None:
        data = request.data
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body must be an object")
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        if not meta.get("name"):
            raise _error(422, "Invalid", "metadata.name: Required value")
        info = self._info(request.resource)
        if request.namespace and (info is None or info.namespaced is not False):
            meta["namespace"] = request.namespace
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        self._stamp(meta)
        if self._has_status(request.resource):
            data.pop("status", None)  # status of a new object is for controllers to write
        key = (request.resource, meta.get("namespace"), meta["name"])
        if key in self._objects and not self._objects[key].deleted:
            raise _error(409, "AlreadyExists", f"{request.resource.plural} {meta['name']!r} already exists")
        if key in self._objects:
            self._objects[key].create(data)
        else:
            self._objects[key] = data
        await self._emit(request.resource, "ADDED", data)
        owners = {r.get("uid") for r in meta.get("ownerReferences") or []}
        if owners and not owners & self._live_uids:
            # Created for an owner that is already gone (a reconcile racing a deletion): collected.
            await self._remove(key)

    async def _update(self, request: rendering.Request) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            raise k8s.KubernetesObjectNotFoundError()
        obj = self._objects[key]
        old = copy.deepcopy(obj.raw)
        data = request.data
        try:
            if isinstance(data, list):
                new = jsonpatch.apply_patch(copy.deepcopy(old), data, in_place=False)
            elif isinstance(data, dict):
                new = dict(dicts.patch_dict(copy.deepcopy(old), data))
            else:
                raise _error(400, "BadRequest", "unsupported patch body")
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            # As the API server: a failed `test` op (kopf's optimistic concurrency) is a 422.
            raise _error(422, "Invalid", str(exc)) from exc
        if request.subresource == "status":
            new = {**old, "status": new.get("status")}
        elif self._has_status(request.resource):
            new["status"] = old.get("status")
        if new.get("status") is None:
            new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "name", "namespace", "generation", "resourceVersion"):
            if field in old.get("metadata", {}):
                meta[field] = old["metadata"][field]
        if new == old:
            return  # a no-op patch: same resourceVersion, no watch event
        if new.get("spec") != old.get("spec"):
            meta["generation"] = int(meta.get("generation") or 1) + 1
        meta["resourceVersion"] = self._next_rv()
        obj.history.append(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._remove(key)
        else:
            await self._emit(request.resource, "MODIFIED", new)

    async def _delete(self, key: tuple[Any, str | None, str]) -> None:
        if key not in self._objects or self._objects[key].deleted:
            raise k8s.KubernetesObjectNotFoundError()
        obj = self._objects[key]
        meta = obj.raw.get("metadata", {})
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            new = copy.deepcopy(obj.raw)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["resourceVersion"] = self._next_rv()
            obj.history.append(new)
            await self._emit(key[0], "MODIFIED", new)
            return
        await self._remove(key)

    async def _remove(self, key: tuple[Any, str | None, str]) -> None:
        obj = self._objects[key]
        raw = obj.raw
        obj.delete()
        self._live_uids.discard(raw.get("metadata", {}).get("uid"))
        await self._emit(key[0], "DELETED", raw)
        await self._collect_garbage(raw.get("metadata", {}).get("uid"))

    async def _collect_garbage(self, owner_uid: str | None) -> None:
        """What the garbage collector does: dependents of a deleted owner are deleted too."""
        if not owner_uid:
            return
        for key, obj in list(self._objects.items()):
            if obj.deleted:
                continue
            refs = obj.raw.get("metadata", {}).get("ownerReferences") or []
            if any(r.get("uid") == owner_uid for r in refs):
                await self._delete(key)

    # -- reads --------------------------------------------------------------------------------
    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_list(request)
        assert isinstance(payload, dict) and request.resource is not None
        selector = request.params.get("labelSelector")
        if selector:
            wanted = dict(part.split("=", 1) for part in selector.replace("==", "=").split(",") if "=" in part)
            payload["items"] = [
                item
                for item in payload["items"]
                if all((item.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in wanted.items())
            ]
        info = self._info(request.resource)
        kind = info.kind if info is not None and info.kind else request.resource.plural.capitalize()
        group = request.resource.group
        api_version = f"{group}/{request.resource.version}" if group else request.resource.version
        for item in payload["items"]:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._last_rv)},
            "items": payload["items"],
        }

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_version(request)
        assert isinstance(payload, dict) and request.resource is not None
        if request.resource.group == "":
            payload["groupVersion"] = request.resource.version  # kmock says "/v1"
        for entry in payload["resources"]:
            if "/" in entry["name"]:  # subresources carry no short names (kubectl warns otherwise)
                entry["shortNames"], entry["categories"] = [], []
                entry["verbs"] = ["get", "patch", "update"]
        return payload
