"""COCO and YOLO exports of rectangle (and, for COCO, polygon) labels on images.

One image per task, from its newest non-cancelled annotation. Coordinates in Label Studio
results are percentages of the image; pixel values need the `original_width` and
`original_height` stored in each region (regions without them are left out of COCO).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import orjson

from api_server.exports import jsontext
from api_server.exports.results import Item, items
from api_server.exports.source import Batch
from api_server.labelconfig.parser import LabelInterface

REGION_KEYS = ("rectanglelabels", "polygonlabels", "labels")


def _info() -> dict[str, Any]:
    return {
        "year": datetime.now(UTC).year,
        "version": "1.0",
        "description": "",
        "contributor": "kubelabel",
        "url": "",
        "date_created": datetime.now(UTC).isoformat(),
    }


class Categories:
    """Label names to ids: the config's labels sorted; labels met later are appended."""

    def __init__(self, interface: LabelInterface, controls: set[str]) -> None:
        names = sorted({label for c in interface.controls.values() if c.tag in controls for label in c.labels})
        self.ids = {name: i for i, name in enumerate(names)}

    def id_of(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = len(self.ids)
        return self.ids[name]

    def as_list(self) -> list[dict[str, Any]]:
        return [{"id": i, "name": n} for n, i in self.ids.items()]


def _image_key(interface: LabelInterface, controls: set[str]) -> str:
    for control in interface.controls.values():
        if control.tag in controls:
            for target in control.to_names:
                obj = interface.objects.get(target)
                if obj is not None and obj.tag == "Image" and obj.variable:
                    return obj.variable
    return next(iter(sorted(interface.variables)))


def _newest(batches: Iterable[Batch], interface: LabelInterface) -> Iterator[list[Item]]:
    for batch in batches:
        out = []
        for task in batch.tasks:
            first = next(items(task, batch.annotations.get(task[0], []), interface), None)
            if first is not None:
                out.append(first)
        yield out


def _regions(item: Item) -> Iterator[dict[str, Any]]:
    for values in item.outputs.values():
        for value in values:
            if value.get("type") in ("RectangleLabels", "PolygonLabels"):
                yield value


def _label(value: dict[str, Any]) -> str | None:
    for key in REGION_KEYS:
        labels = value.get(key)
        if labels:
            return str(labels[0])
    return None


def coco(batches: Iterable[Batch], interface: LabelInterface) -> Iterator[bytes]:
    categories = Categories(interface, {"RectangleLabels", "PolygonLabels"})
    image_key = _image_key(interface, {"RectangleLabels", "PolygonLabels"})
    annotation_id = 0
    image_id = 0
    first_image = True
    with tempfile.TemporaryFile() as annotations:
        yield b'{"images":['
        for records in _newest(batches, interface):
            images: list[bytes] = []
            for item in records:
                regions = list(_regions(item))
                width = next((r["original_width"] for r in regions if r.get("original_width")), None)
                height = next((r["original_height"] for r in regions if r.get("original_height")), None)
                images.append(
                    jsontext.dumps(
                        {"width": width, "height": height, "id": image_id, "file_name": item.data.get(image_key)}
                    )
                )
                for region in regions:
                    label = _label(region)
                    w, h = region.get("original_width"), region.get("original_height")
                    if label is None or not w or not h:
                        continue
                    shape = _coco_shape(region, w, h)
                    if shape is None:
                        continue
                    bbox, segmentation, area = shape
                    record = {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": categories.id_of(label),
                        "segmentation": segmentation,
                        "bbox": bbox,
                        "ignore": 0,
                        "iscrowd": 0,
                        "area": area,
                    }
                    annotations.write((b"," if annotation_id else b"") + jsontext.dumps(record))
                    annotation_id += 1
                image_id += 1
            if images:
                yield (b"" if first_image else b",") + b",".join(images)
                first_image = False
        yield b'],"annotations":['
        annotations.seek(0)
        while chunk := annotations.read(1 << 20):
            yield chunk
    tail = {"categories": categories.as_list(), "info": _info()}
    yield b"]," + orjson.dumps(tail)[1:]


def _coco_shape(value: dict[str, Any], w: float, h: float) -> tuple[list[float], list[list[float]], float] | None:
    if "points" in value:
        points = [(p[0] * w / 100.0, p[1] * h / 100.0) for p in value.get("points") or [] if len(p) >= 2]
        if len(points) < 3:
            return None
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(points))))
        flat = [c for p in points for c in p]
        return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], [flat], area
    try:
        x = float(value["x"]) * w / 100.0
        y = float(value["y"]) * h / 100.0
        bw = float(value["width"]) * w / 100.0
        bh = float(value["height"]) * h / 100.0
    except (KeyError, TypeError, ValueError):
        return None
    return [x, y, bw, bh], [], bw * bh


class _Sink:
    """A write-only file for zipfile; what was written is taken out after every batch."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # zipfile never closes a file it was handed, but its writable-file type names close()

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def yolo(batches: Iterable[Batch], interface: LabelInterface) -> Iterator[bytes]:
    """A zip: labels/<image name>.txt (`class cx cy w h`, fractions of the image), classes.txt, notes.json."""
    categories = Categories(interface, {"RectangleLabels"})
    image_key = _image_key(interface, {"RectangleLabels"})
    sink = _Sink()
    used: set[str] = set()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for records in _newest(batches, interface):
            for item in records:
                stem = PurePosixPath(str(item.data.get(image_key) or "")).stem or str(item.task_id)
                if stem in used:
                    stem = f"{stem}_{item.task_id}"
                used.add(stem)
                lines = []
                for region in _regions(item):
                    label = _label(region)
                    if label is None or "x" not in region or region.get("type") != "RectangleLabels":
                        continue
                    x, y = float(region["x"]) / 100.0, float(region["y"]) / 100.0
                    w, h = float(region["width"]) / 100.0, float(region["height"]) / 100.0
                    lines.append(f"{categories.id_of(label)} {x + w / 2} {y + h / 2} {w} {h}")
                archive.writestr(f"labels/{stem}.txt", "\n".join(lines) + ("\n" if lines else ""))
            yield sink.drain()
        names = sorted(categories.ids, key=categories.ids.__getitem__)
        archive.writestr("classes.txt", "\n".join(names) + "\n")
        archive.writestr(
            "notes.json",
            orjson.dumps({"categories": categories.as_list(), "info": _info()}, option=orjson.OPT_INDENT_2),
        )
    yield sink.drain()
