"""Find the text-classification pair (a Choices control over a Text object) in a labeling config."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

# Object tags whose `value` resolves to text the classifier can read.
_TEXT_OBJECTS = {"text", "hypertext", "paragraphs"}


class LabelConfigError(ValueError):
    """The config has no Choices control over a text object."""


@dataclass(frozen=True)
class ChoicesSchema:
    from_name: str
    to_name: str
    # Key of the task's `data` holding the text (`value="$text"` -> "text").
    data_key: str
    labels: tuple[str, ...]
    multiple: bool


def _choice_values(control: Element) -> tuple[str, ...]:
    values = []
    for child in control.iter():
        if child.tag.lower() == "choice":
            value = child.get("value") or child.get("alias")
            if value:
                values.append(value)
    return tuple(values)


def parse_choices_schema(label_config: str) -> ChoicesSchema:
    """The first Choices control whose toName is a text object with a `$field` value."""
    try:
        root = ElementTree.fromstring(label_config)
    except Exception as exc:  # defusedxml raises several types for hostile or broken XML
        raise LabelConfigError(f"label config is not valid XML: {exc}") from exc
    objects: dict[str, str] = {}
    for element in root.iter():
        name, value = element.get("name"), element.get("value", "")
        if element.tag.lower() in _TEXT_OBJECTS and name and value.startswith("$"):
            if element.get("valueType", "").lower() == "url":
                continue  # text behind a URL: this backend does not fetch it
            objects[name] = value[1:]
    for element in root.iter():
        if element.tag.lower() != "choices":
            continue
        from_name, to_names = element.get("name"), (element.get("toName") or "").split(",")
        to_name = next((n.strip() for n in to_names if n.strip() in objects), None)
        if not from_name or to_name is None:
            continue
        labels = _choice_values(element)
        if len(labels) < 2:
            continue
        return ChoicesSchema(
            from_name=from_name,
            to_name=to_name,
            data_key=objects[to_name],
            labels=labels,
            multiple=(element.get("choice") or "single").lower() == "multiple",
        )
    raise LabelConfigError("label config has no <Choices> (with 2+ <Choice>) over a <Text value='$field'>")
