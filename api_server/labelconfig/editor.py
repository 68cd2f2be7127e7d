"""Which tags the web app's editor can draw: a config may be valid for the API and still use a tag
the vendored Label Studio editor (1.4.0) does not register; the page would then show "Tag with
name X is not registered". Such a config is accepted (the API and exports handle it) with a
warning naming each such tag.
"""

from __future__ import annotations

from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

EDITOR = "Label Studio editor 1.4.0"

# The 51 tags @heartexlabs/label-studio 1.4.0 registers (its Registry.addTag calls; it looks tags
# up case-insensitively). Region tags (rectangleregion, ...) are internal but registered too.
EDITOR_TAGS = frozenset(
    {
        "audio", "audioplus", "brush", "brushlabels", "brushregion", "channel", "choice", "choices",
        "collapse", "dialog", "ellipse", "ellipselabels", "ellipseregion", "filter", "header", "hypertext",
        "hypertextlabels", "image", "keypoint", "keypointlabels", "keypointregion", "label", "labels",
        "list", "number", "pairwise", "panel", "paragraphlabels", "paragraphs", "polygon", "polygonlabels",
        "polygonregion", "ranker", "rating", "rectangle", "rectanglelabels", "rectangleregion", "relation",
        "relations", "shortcut", "style", "table", "taxonomy", "text", "textarea", "textarearegion",
        "timeseries", "timeserieslabels", "timeseriesregion", "video", "view",
    }
)  # fmt: skip


def editor_warnings(config: str) -> list[str]:
    """One warning per tag of `config` the editor cannot render (none for a config that does not
    parse: the validator's errors say why)."""
    try:
        root = ElementTree.fromstring(config)
    except (ParseError, DefusedXmlException):
        return []
    missing = sorted({e.tag for e in root.iter() if isinstance(e.tag, str) and e.tag.lower() not in EDITOR_TAGS})
    return [
        f"<{tag}> is accepted by the API but the web app's editor ({EDITOR}) cannot render it: "
        "label these tasks through the API"
        for tag in missing
    ]
