"""Parse and validate Label Studio labeling configs (XML).

`parse()` returns a `LabelInterface`: the object tags (and the task data fields they read),
the control tags (with their labels), and nothing else the rest of the server needs to
know about XML. Every problem is reported in one `LabelConfigError` with all messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from api_server.labelconfig.tags import (
    CONTROL_TAGS,
    LABELED_CONTROLS,
    LAYOUT_TAGS,
    NO_TARGET_CONTROLS,
    OBJECT_TAGS,
    OPTION_TAGS,
)

_VARIABLE = re.compile(r"^\$([A-Za-z_][\w-]*)")


class LabelConfigError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ObjectTag:
    tag: str
    name: str
    value: str
    # The task data field this object reads (None when `value` is a literal).
    variable: str | None


@dataclass(frozen=True)
class ControlTag:
    tag: str
    name: str
    to_names: tuple[str, ...]
    labels: tuple[str, ...]
    attrs: dict[str, str] = field(default_factory=dict)
    # Options come from task data (`value="$field"` on Choices/Labels): any label is allowed.
    dynamic_labels: bool = False

    @property
    def type(self) -> str:
        return self.tag.lower()


@dataclass(frozen=True)
class LabelInterface:
    objects: dict[str, ObjectTag]
    controls: dict[str, ControlTag]

    @property
    def variables(self) -> set[str]:
        """Task data fields the config needs."""
        found = {o.variable for o in self.objects.values() if o.variable}
        found.update(c.attrs["value"][1:] for c in self.controls.values() if c.dynamic_labels)
        return found

    def has(self, object_tag: str, control_tags: set[str]) -> bool:
        """True when some control of one of `control_tags` points at an object of kind `object_tag`."""
        for control in self.controls.values():
            if control.tag in control_tags and any(
                self.objects[n].tag == object_tag for n in control.to_names if n in self.objects
            ):
                return True
        return False


def _variable(value: str) -> str | None:
    match = _VARIABLE.match(value or "")
    return match.group(1) if match else None


def _option_values(element: Element) -> list[str]:
    values: list[str] = []
    for child in element.iter():
        if child is not element and child.tag in {"Label", "Choice"}:
            value = child.get("value") or child.get("alias")
            if value is not None:
                values.append(value)
    return values


def parse(config: str) -> LabelInterface:
    """Parse a config; raise LabelConfigError naming every problem found."""
    if not config or not config.strip():
        raise LabelConfigError(["label config is empty"])
    try:
        root = ElementTree.fromstring(config)
    except ParseError as exc:
        raise LabelConfigError([f"label config is not well-formed XML: {exc}"]) from None
    except DefusedXmlException as exc:
        raise LabelConfigError([f"label config uses a forbidden XML feature: {exc}"]) from None

    errors: list[str] = []
    if root.tag != "View":
        errors.append(f"the root tag must be <View>, not <{root.tag}>")

    objects: dict[str, ObjectTag] = {}
    controls: dict[str, ControlTag] = {}
    names: set[str] = set()
    in_repeater = False
    for element in root.iter():
        tag = element.tag
        if tag == "Repeater":
            in_repeater = True
        known = tag in OBJECT_TAGS or tag in CONTROL_TAGS or tag in OPTION_TAGS or tag in LAYOUT_TAGS
        if not known:
            errors.append(f"unknown tag <{tag}>")
            continue
        if tag not in OBJECT_TAGS and tag not in CONTROL_TAGS:
            continue
        name = element.get("name")
        if not name:
            errors.append(f"<{tag}> needs a name attribute")
            continue
        if name in names and not in_repeater:
            errors.append(f"duplicate name '{name}': every object and control tag needs its own name")
            continue
        names.add(name)
        if tag in OBJECT_TAGS:
            value = element.get("value") or element.get("valueList") or ""
            if not value:
                errors.append(f'<{tag} name="{name}"> needs a value attribute (for example value="$text")')
            objects[name] = ObjectTag(tag=tag, name=name, value=value, variable=_variable(value))
        else:
            to_names = tuple(n.strip() for n in (element.get("toName") or "").split(",") if n.strip())
            labels = tuple(_option_values(element))
            dynamic = _variable(element.get("value", "")) is not None
            controls[name] = ControlTag(
                tag=tag,
                name=name,
                to_names=to_names,
                labels=labels,
                attrs=dict(element.attrib),
                dynamic_labels=dynamic,
            )

    for control in controls.values():
        if not control.to_names and control.tag not in NO_TARGET_CONTROLS:
            errors.append(f'<{control.tag} name="{control.name}"> needs a toName attribute')
        for target in control.to_names:
            if target not in objects:
                errors.append(
                    f'<{control.tag} name="{control.name}"> has toName="{target}", but no object tag has that name'
                )
        if (
            control.tag in LABELED_CONTROLS
            and not control.labels
            and not control.dynamic_labels
            and "apiUrl" not in control.attrs
        ):
            child = "Choice" if control.tag in {"Choices", "Taxonomy"} else "Label"
            errors.append(f'<{control.tag} name="{control.name}"> has no <{child}> children: add at least one')
    if errors:
        raise LabelConfigError(errors)
    return LabelInterface(objects=objects, controls=controls)


def missing_variables(interface: LabelInterface, data: dict[str, object]) -> list[str]:
    """Config variables a task's data lacks (sorted, for stable messages)."""
    return sorted(v for v in interface.variables if v not in data)
