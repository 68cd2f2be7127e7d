"""The Label Studio tags kubelabel understands, by role."""

from __future__ import annotations

# Tags that show task data; their `value="$field"` binds to task.data["field"].
OBJECT_TAGS = frozenset(
    {
        "Text",
        "HyperText",
        "Image",
        "Audio",
        "AudioPlus",
        "Video",
        "TimeSeries",
        "Table",
        "List",
        "Paragraphs",
        "Chat",
        "Pdf",
        "Markdown",
    }
)

# Tags that produce results; the lower-cased tag name is the result item's `type`.
CONTROL_TAGS = frozenset(
    {
        "Choices",
        "Labels",
        "RectangleLabels",
        "Rectangle",
        "PolygonLabels",
        "Polygon",
        "KeyPointLabels",
        "KeyPoint",
        "BrushLabels",
        "Brush",
        "EllipseLabels",
        "Ellipse",
        "VectorLabels",
        "Vector",
        "TextArea",
        "Rating",
        "Number",
        "DateTime",
        "Taxonomy",
        "Pairwise",
        "Ranker",
        "HyperTextLabels",
        "ParagraphLabels",
        "TimeSeriesLabels",
        "TimelineLabels",
        "VideoRectangle",
        "MagicWand",
        "Relations",
    }
)

# Controls whose results carry label names, and so need <Label>/<Choice> children.
LABELED_CONTROLS = frozenset(
    {
        "Choices",
        "Labels",
        "RectangleLabels",
        "PolygonLabels",
        "KeyPointLabels",
        "BrushLabels",
        "EllipseLabels",
        "VectorLabels",
        "HyperTextLabels",
        "ParagraphLabels",
        "TimeSeriesLabels",
        "TimelineLabels",
        "Taxonomy",
    }
)

# Children that define a control's options.
OPTION_TAGS = frozenset({"Label", "Choice", "Relation", "Channel", "Bucket", "Path"})

# Layout and presentation tags, passed through untouched.
LAYOUT_TAGS = frozenset(
    {
        "View",
        "Header",
        "Style",
        "Collapse",
        "Panel",
        "Filter",
        "Shortcut",
        "Script",
        "Repeater",
        "Hypertext",
        "Pagination",
        "Item",
    }
)

# Controls that do not need a toName (they relate other regions, not an object).
NO_TARGET_CONTROLS = frozenset({"Relations"})
