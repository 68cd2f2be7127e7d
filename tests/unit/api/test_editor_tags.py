"""The config validator's warning for tags the vendored editor cannot render."""

from __future__ import annotations

import re
from pathlib import Path

from api_server.labelconfig.editor import EDITOR_TAGS, editor_warnings
from api_server.labelconfig.parser import parse
from api_server.labelconfig.tags import CONTROL_TAGS, LAYOUT_TAGS, OBJECT_TAGS, OPTION_TAGS

BUNDLE = Path(__file__).resolve().parents[3] / "api_server" / "web" / "vendor" / "label-studio" / "main.js"

# What the issue asks the web app to label: each renders in 1.4.0.
RENDERED = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Choices name="one" toName="text" choice="single"><Choice value="A"/></Choices>
  <Choices name="many" toName="text" choice="multiple"><Choice value="A"/><Choice value="B"/></Choices>
  <TextArea name="note" toName="text"/>
  <Rating name="stars" toName="text"/>
  <Taxonomy name="tax" toName="text"><Choice value="Animal"><Choice value="Cat"/></Choice></Taxonomy>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="Eye"/></KeyPointLabels>
  <Audio name="audio" value="$audio"/>
  <Paragraphs name="dialog" value="$dialog" nameKey="author" textKey="text"/>
  <HyperText name="html" value="$html"/>
  <Relations name="rel"><Relation value="is"/></Relations>
</View>"""


def test_the_list_is_what_the_vendored_bundle_registers():
    registered = set(re.findall(r'addTag\("([a-z]+)"', BUNDLE.read_text()))
    assert registered == EDITOR_TAGS
    assert len(EDITOR_TAGS) == 51


def test_the_issues_tags_render_without_warnings():
    parse(RENDERED)  # valid for the API too
    assert editor_warnings(RENDERED) == []


def test_a_tag_the_editor_lacks_is_named():
    config = """<View><Video name="v" value="$video"/>
      <VideoRectangle name="box" toName="v"/><DateTime name="when" toName="v"/></View>"""
    parse(config)  # the API accepts it
    warnings = editor_warnings(config)
    assert [w.split(">")[0] for w in warnings] == ["<DateTime", "<VideoRectangle"]
    assert all("Label Studio editor 1.4.0" in w for w in warnings)


def test_every_tag_the_validator_accepts_is_either_rendered_or_warned_about():
    accepted = OBJECT_TAGS | CONTROL_TAGS | OPTION_TAGS | LAYOUT_TAGS
    unrendered = {t for t in accepted if t.lower() not in EDITOR_TAGS}
    # The newer tags, and layout helpers 1.4.0 predates.
    assert unrendered == {
        "Chat", "Pdf", "Markdown", "Vector", "VectorLabels", "DateTime", "TimelineLabels", "VideoRectangle",
        "MagicWand", "Bucket", "Path", "Script", "Repeater", "Pagination", "Item",
    }  # fmt: skip
    for tag in unrendered:
        assert editor_warnings(f"<View><{tag}/></View>")[0].startswith(f"<{tag}>")


def test_a_broken_config_gets_no_warning_only_its_errors():
    assert editor_warnings("<View><Text") == []
