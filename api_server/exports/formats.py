"""Export formats and which ones a project's label config allows (Label Studio's rules)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from api_server.labelconfig.parser import LabelInterface


class ExportType(StrEnum):
    JSON = "JSON"
    JSON_MIN = "JSON_MIN"
    JSONL = "JSONL"
    CSV = "CSV"
    TSV = "TSV"
    CONLL2003 = "CONLL2003"
    COCO = "COCO"
    YOLO = "YOLO"


@dataclass(frozen=True)
class FormatInfo:
    title: str
    description: str
    tags: tuple[str, ...]
    extension: str
    media_type: str


INFO: dict[ExportType, FormatInfo] = {
    ExportType.JSON: FormatInfo(
        "JSON",
        "List of items in raw JSON format stored in one JSON file. Use to export both the data and the annotations.",
        ("data", "annotations", "predictions"),
        "json",
        "application/json",
    ),
    ExportType.JSON_MIN: FormatInfo(
        "JSON-MIN",
        'List of items where only "from_name", "to_name" values from the raw JSON format are exported.',
        ("data", "annotations"),
        "json",
        "application/json",
    ),
    ExportType.JSONL: FormatInfo(
        "JSONL",
        "One task per line in Label Studio's JSON task format (kubelabel extension; same content as JSON).",
        ("data", "annotations", "predictions"),
        "jsonl",
        "application/x-ndjson",
    ),
    ExportType.CSV: FormatInfo(
        "CSV",
        "Results are stored as comma-separated values with the column names specified by the values of the "
        '"from_name" and "to_name" fields.',
        ("data", "annotations"),
        "csv",
        "text/csv",
    ),
    ExportType.TSV: FormatInfo(
        "TSV",
        'Results are stored in tab-separated tabular file with column names specified by "from_name" "to_name" values',
        ("data", "annotations"),
        "tsv",
        "text/tab-separated-values",
    ),
    ExportType.CONLL2003: FormatInfo(
        "CONLL2003",
        "Popular format used for the CoNLL-2003 named entity recognition challenge.",
        ("text", "annotations"),
        "conll",
        "text/plain",
    ),
    ExportType.COCO: FormatInfo(
        "COCO",
        "Popular machine learning format used by the COCO dataset for object detection and image segmentation "
        "tasks with polygons and rectangles.",
        ("image segmentation", "object detection"),
        "json",
        "application/json",
    ),
    ExportType.YOLO: FormatInfo(
        "YOLO",
        "Popular TXT format is created for each image file. Each txt file contains annotations for the "
        "corresponding image file, that is object class, object coordinates, height & width.",
        ("image segmentation", "object detection"),
        "zip",
        "application/zip",
    ),
}

IMAGE_REGION_CONTROLS = {"RectangleLabels", "PolygonLabels"}


def available(interface: LabelInterface | None) -> set[ExportType]:
    """Formats the config supports (JSON, JSON_MIN, JSONL, CSV and TSV always)."""
    out = {ExportType.JSON, ExportType.JSON_MIN, ExportType.JSONL, ExportType.CSV, ExportType.TSV}
    if interface is None or len(interface.variables) > 1:
        return out
    if interface.has("Text", {"Labels"}):
        out.add(ExportType.CONLL2003)
    if interface.has("Image", IMAGE_REGION_CONTROLS):
        out.add(ExportType.COCO)
    if interface.has("Image", {"RectangleLabels"}):
        out.add(ExportType.YOLO)
    return out


def listing(interface: LabelInterface | None) -> list[dict[str, object]]:
    """Label Studio's /export/formats shape: every format, disabled when the config does not fit it."""
    ok = available(interface)
    return [
        {
            "name": fmt.value,
            "title": info.title,
            "description": info.description,
            "tags": list(info.tags),
            "disabled": fmt not in ok,
        }
        for fmt, info in INFO.items()
    ]
