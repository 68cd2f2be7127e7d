"""Placement and identity on a pod template: the one place every builder of pods goes through.

`place(template, own, defaults)` sets the pod spec fields of `spec.pod` (the resource's own, each
field falling back to the operator's default as a whole) on a pod template the caller built. Labels
and annotations are added beside the operator's own, which always win (admission refuses the reserved
keys anyway). Children are applied with merge patches: `clear_dropped` turns a field no longer set
(and a label or annotation of the user's no longer wanted) into a null, so it is cleared on the object
rather than left behind.
"""

from __future__ import annotations

import copy
from typing import Any

from kubelabel_operator.builders.meta import POD_METADATA_ANNOTATION
from kubelabel_operator.models.pod import PodSettings, effective

# Pod spec field -> PodSettings attribute. `serviceAccount` is the deprecated twin the API server keeps
# equal to serviceAccountName; both are cleared together or the old account stays.
SPEC_FIELDS = {
    "imagePullSecrets": "image_pull_secrets",
    "nodeSelector": "node_selector",
    "tolerations": "tolerations",
    "affinity": "affinity",
    "topologySpreadConstraints": "topology_spread_constraints",
    "serviceAccountName": "service_account_name",
    "priorityClassName": "priority_class_name",
}


def _wire(value: Any) -> Any:
    """A fresh copy in manifest form: a caller may extend what it gets (a pod affinity of its own)
    without touching the spec or the operator's defaults, which every other pod shares."""
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if hasattr(value, "wire"):
        return value.wire()
    return copy.deepcopy(value)


def place(template: dict[str, Any], own: PodSettings | None, defaults: PodSettings | None = None) -> dict[str, Any]:
    """Sets placement and identity on `template` ({metadata, spec} of a pod) in place and returns it."""
    pod = effective(own, defaults) or PodSettings()
    spec = template.setdefault("spec", {})
    for wire_name, attr in SPEC_FIELDS.items():
        value = getattr(pod, attr)
        if value is not None:
            spec[wire_name] = _wire(value)
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(pod.labels or {}), **(meta.get("labels") or {})}
    if pod.annotations:
        meta["annotations"] = {**pod.annotations, **(meta.get("annotations") or {})}
    keys = [f"label:{k}" for k in sorted(pod.labels or {})] + [f"annotation:{k}" for k in sorted(pod.annotations or {})]
    if keys:
        # Which pod labels and annotations are the user's, so that one dropped later can be cleared (and
        # the ones others add, such as kubectl rollout restart's, are left alone).
        meta.setdefault("annotations", {})[POD_METADATA_ANNOTATION] = ",".join(keys)
    return template


def _user_keys(template: dict[str, Any]) -> set[str]:
    recorded = ((template.get("metadata") or {}).get("annotations") or {}).get(POD_METADATA_ANNOTATION)
    return set(recorded.split(",")) if recorded else set()


def pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates inside a Deployment, Job or CronJob (none in other kinds)."""
    spec = obj.get("spec") or {}
    if "jobTemplate" in spec:
        spec = (spec["jobTemplate"] or {}).get("spec") or {}
    template = spec.get("template")
    return [template] if isinstance(template, dict) else []


def clear_dropped(patch: dict[str, Any], actual: dict[str, Any]) -> None:
    """Nulls in a merge `patch` for the placement fields `actual`'s pod template has and the desired one
    no longer sets (a nodeSelector removed from spec.pod leaves the pods free again)."""
    for want, have in zip(pod_templates(patch), pod_templates(actual), strict=False):
        want_spec, have_spec = want.setdefault("spec", {}), have.get("spec") or {}
        for field in [*SPEC_FIELDS, "serviceAccount"]:
            if field in have_spec and field not in want_spec:
                want_spec[field] = None
        meta = want.setdefault("metadata", {})
        for dropped in sorted(_user_keys(have) - _user_keys(want)):
            kind, _, key = dropped.partition(":")
            meta.setdefault("labels" if kind == "label" else "annotations", {})[key] = None
        if _user_keys(have) and not _user_keys(want):
            meta.setdefault("annotations", {})[POD_METADATA_ANNOTATION] = None


def extra_tolerations(template: dict[str, Any], tolerations: list[dict[str, Any]]) -> None:
    """Tolerations the operator itself needs (a GPU node's taint), after the user's."""
    spec = template["spec"]
    spec["tolerations"] = [*(spec.get("tolerations") or []), *tolerations]
