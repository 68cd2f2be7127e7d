"""An in-memory Kubernetes API for reconciler tests: get, list by labels, create, JSON merge patch, delete."""

from __future__ import annotations

import copy
from typing import Any

from kubelabel_operator.k8s.resources import Resource


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386, as the API server applies a merge patch: null removes, objects merge, the rest replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge_patch(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


class FakeK8s:
    """Objects keyed by (plural, name) in one namespace; every answer is a copy, as over the wire."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches = 0

    def put(self, res: Resource, obj: dict[str, Any]) -> None:
        obj.setdefault("metadata", {}).setdefault("namespace", "ns")
        self.objects[(res.plural, obj["metadata"]["name"])] = obj

    def kind(self, res: Resource) -> list[dict[str, Any]]:
        return [o for (plural, _), o in self.objects.items() if plural == res.plural]

    async def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((res.plural, name)))

    async def list(self, res: Resource, namespace: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        want = labels or {}
        return [
            copy.deepcopy(o)
            for o in self.kind(res)
            if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())
        ]

    async def create(self, res: Resource, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"]["uid"] = f"created-{len(self.objects)}"
        self.put(res, obj)
        return copy.deepcopy(obj)

    async def patch(
        self, res: Resource, namespace: str, name: str, patch: dict[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        self.patches += 1
        merge_patch(self.objects[(res.plural, name)], patch)
        return copy.deepcopy(self.objects[(res.plural, name)])

    async def delete(self, res: Resource, namespace: str, name: str) -> bool:
        return self.objects.pop((res.plural, name), None) is not None
