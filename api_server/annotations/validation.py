"""Check annotation and prediction results against the project's labeling config.

Every result item must name a control of the config (`from_name`), one of that control's
targets (`to_name`), carry the control's type (its lower-cased tag) and a `value` with the
keys that type needs; chosen labels and choices must exist in the control (unless the
control takes its options from task data) and numbers must be in range. All problems are
reported at once, keyed by the item's path: {"result[2].value.choices": [...]}.
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Real
from typing import Any

from api_server.common.errors import BadRequest
from api_server.labelconfig.parser import ControlTag, LabelConfigError, LabelInterface, parse

# Geometry/value keys each result type needs (besides the label list named like the type).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "labels": ("start", "end"),
    "hypertextlabels": ("start", "end", "startOffset", "endOffset"),
    "paragraphlabels": ("start", "end"),
    "timeserieslabels": ("start", "end"),
    "timelinelabels": ("ranges",),
    "rectanglelabels": ("x", "y", "width", "height"),
    "rectangle": ("x", "y", "width", "height"),
    "polygonlabels": ("points",),
    "polygon": ("points",),
    "keypointlabels": ("x", "y"),
    "keypoint": ("x", "y"),
    "ellipselabels": ("x", "y", "radiusX", "radiusY"),
    "ellipse": ("x", "y", "radiusX", "radiusY"),
    "brushlabels": ("format",),
    "brush": ("format",),
    "videorectangle": ("sequence",),
    "choices": ("choices",),
    "taxonomy": ("taxonomy",),
    "textarea": ("text",),
    "rating": ("rating",),
    "number": ("number",),
    "datetime": ("datetime",),
    "pairwise": ("selected",),
    "ranker": ("ranker",),
}
# Types whose value carries a list of label names under the type's own key.
LABEL_LIST_TYPES = frozenset(
    {
        "labels",
        "hypertextlabels",
        "paragraphlabels",
        "timeserieslabels",
        "timelinelabels",
        "rectanglelabels",
        "polygonlabels",
        "keypointlabels",
        "ellipselabels",
        "brushlabels",
        "vectorlabels",
    }
)
PERCENT_KEYS = ("x", "y")
MAX_ITEMS = 10_000


@lru_cache(maxsize=256)
def interface_for(label_config: str) -> LabelInterface | None:
    """The parsed config (cached: every submission of a project uses the same one)."""
    try:
        return parse(label_config)
    except LabelConfigError:
        return None


class _Errors:
    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.items.setdefault(path, []).append(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _float_attr(control: ControlTag, name: str) -> float | None:
    raw = control.attrs.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _check_options(control: ControlTag, chosen: Any, path: str, errors: _Errors, what: str) -> None:
    if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
        errors.add(path, f"must be a list of {what} names")
        return
    if control.dynamic_labels or "apiUrl" in control.attrs:
        return
    known = set(control.labels)
    for name in chosen:
        if name not in known:
            options = ", ".join(control.labels)
            errors.add(path, f"'{name}' is not a {what} of {control.name}; choose from {options}")


def _check_value(control: ControlTag, kind: str, value: dict[str, Any], path: str, errors: _Errors) -> None:
    for key in REQUIRED_KEYS.get(kind, ()):
        if key not in value:
            errors.add(f"{path}.{key}", f"required for a {kind} result")
    if kind in LABEL_LIST_TYPES and kind in value:
        _check_options(control, value[kind], f"{path}.{kind}", errors, "label")
    if kind == "choices" and "choices" in value:
        chosen = value["choices"]
        _check_options(control, chosen, f"{path}.choices", errors, "choice")
        single = control.attrs.get("choice", "single") in {"single", "single-radio"}
        if single and isinstance(chosen, list) and len(chosen) > 1:
            errors.add(f"{path}.choices", f"{control.name} takes a single choice, got {len(chosen)}")
    if kind == "taxonomy" and "taxonomy" in value:
        paths = value["taxonomy"]
        if not isinstance(paths, list) or not all(isinstance(p, list) for p in paths):
            errors.add(f"{path}.taxonomy", "must be a list of paths (lists of choice names)")
        elif not control.dynamic_labels and "apiUrl" not in control.attrs:
            for branch in paths:
                _check_options(control, branch, f"{path}.taxonomy", errors, "choice")
    if kind == "rating" and "rating" in value:
        rating = value["rating"]
        top = _float_attr(control, "maxRating") or 5
        if not _is_number(rating) or not 0 <= rating <= top:
            errors.add(f"{path}.rating", f"must be a number from 0 to {top:g} (maxRating of {control.name})")
    if kind == "number" and "number" in value:
        number = value["number"]
        low, high = _float_attr(control, "min"), _float_attr(control, "max")
        if not _is_number(number):
            errors.add(f"{path}.number", "must be a number")
        elif (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{'-inf' if low is None else f'{low:g}'}..{'inf' if high is None else f'{high:g}'}"
            errors.add(f"{path}.number", f"{number} is out of range {bounds} of {control.name}")
    if kind == "textarea" and "text" in value:
        text = value["text"]
        if not isinstance(text, str) and not (isinstance(text, list) and all(isinstance(t, str) for t in text)):
            errors.add(f"{path}.text", "must be a string or a list of strings")
    if kind == "pairwise" and value.get("selected") not in (None, "left", "right"):
        errors.add(f"{path}.selected", "must be 'left' or 'right'")
    for key in PERCENT_KEYS:
        geometry = key in REQUIRED_KEYS.get(kind, ())
        if geometry and key in value and not _is_number(value[key]):
            errors.add(f"{path}.{key}", "must be a number (percent of the object's size)")
    for key in ("start", "end"):
        if kind == "labels" and key in value and not _is_number(value[key]):
            errors.add(f"{path}.{key}", "must be a character offset (a number)")
    if kind in {"polygonlabels", "polygon"} and "points" in value:
        points = value["points"]
        if not isinstance(points, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(_is_number(c) for c in p) for p in points
        ):
            errors.add(f"{path}.points", "must be a list of [x, y] pairs")


def _check_relation(item: dict[str, Any], path: str, region_ids: set[str], errors: _Errors) -> None:
    for key in ("from_id", "to_id"):
        ref = item.get(key)
        if not isinstance(ref, str) or not ref:
            errors.add(f"{path}.{key}", "required for a relation (the id of a region in this result)")
        elif ref not in region_ids:
            errors.add(f"{path}.{key}", f"no region with id '{ref}' in this result")


def result_errors(interface: LabelInterface, result: Any, field: str = "result") -> dict[str, list[str]]:
    """Every problem of `result` against `interface`, keyed by item path (empty when valid)."""
    errors = _Errors()
    if not isinstance(result, list):
        errors.add(field, "must be a list of result items")
        return errors.items
    if len(result) > MAX_ITEMS:
        errors.add(field, f"at most {MAX_ITEMS} items")
        return errors.items
    region_ids = {str(i["id"]) for i in result if isinstance(i, dict) and i.get("id") is not None}
    for index, item in enumerate(result):
        path = f"{field}[{index}]"
        if not isinstance(item, dict):
            errors.add(path, "must be an object")
            continue
        kind = item.get("type")
        if kind == "relation":
            _check_relation(item, path, region_ids, errors)
            continue
        from_name, to_name, value = item.get("from_name"), item.get("to_name"), item.get("value")
        control = interface.controls.get(from_name) if isinstance(from_name, str) else None
        if control is None:
            names = ", ".join(interface.controls) or "none"
            errors.add(f"{path}.from_name", f"'{from_name}' is not a control of this project's config ({names})")
        elif to_name not in control.to_names:
            targets = ", ".join(control.to_names) or "none"
            errors.add(f"{path}.to_name", f"'{to_name}' is not a target of {control.name} (toName: {targets})")
        if not isinstance(kind, str):
            errors.add(f"{path}.type", "required (the lower-cased control tag, e.g. 'choices')")
        elif control is not None and kind != control.type:
            errors.add(f"{path}.type", f"'{kind}' does not match control {control.name}, whose type is {control.type}")
        if not isinstance(value, dict):
            errors.add(f"{path}.value", "required: an object")
        elif control is not None and kind == control.type:
            _check_value(control, kind, value, f"{path}.value", errors)
    return errors.items


def validate_result(label_config: str, result: Any, field: str = "result") -> None:
    """Raise BadRequest naming every invalid item and field; no-op when the config has no controls."""
    interface = interface_for(label_config)
    if interface is None:
        raise BadRequest("the project's label config is invalid; fix it before submitting results")
    errors = result_errors(interface, result, field)
    if errors:
        first = "; ".join(f"{path}: {', '.join(msgs)}" for path, msgs in list(errors.items())[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise BadRequest(f"invalid {field}: {first}{more}", validation_errors=errors)
