"""Label config parsing: every supported tag, and the errors users see."""

from __future__ import annotations

import pytest

from api_server.labelconfig.parser import LabelConfigError, missing_variables, parse

FULL = """<View>
  <Header value="All tags"/>
  <Style>.x { color: red }</Style>
  <Text name="text" value="$text"/>
  <HyperText name="html" value="$html"/>
  <Image name="image" value="$image"/>
  <Audio name="audio" value="$audio"/>
  <Video name="video" value="$video"/>
  <TimeSeries name="ts" value="$csv" valueType="url"><Channel column="a"/></TimeSeries>
  <Table name="table" value="$table"/>
  <Choices name="choice" toName="text"><Choice value="A"/><Choice value="B"/></Choices>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="Eye"/></KeyPointLabels>
  <BrushLabels name="brush" toName="image"><Label value="Sky"/></BrushLabels>
  <TextArea name="comment" toName="text"/>
  <Rating name="rating" toName="text" maxRating="5"/>
  <Number name="num" toName="text" min="0" max="10"/>
  <DateTime name="dt" toName="text"/>
  <Taxonomy name="tax" toName="text"><Choice value="Animal"><Choice value="Cat"/></Choice></Taxonomy>
  <Pairwise name="pw" toName="text,html"/>
  <Ranker name="rank" toName="table"/>
</View>"""


def test_full_config_parses():
    interface = parse(FULL)
    assert interface.variables == {"text", "html", "image", "audio", "video", "csv", "table"}
    assert interface.controls["box"].type == "rectanglelabels"
    assert interface.controls["tax"].labels == ("Animal", "Cat")
    assert interface.controls["pw"].to_names == ("text", "html")
    assert interface.has("Image", {"RectangleLabels"})
    assert not interface.has("Text", {"RectangleLabels"})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "empty"),
        ("<Foo/>", "root tag must be <View>"),
        ("<View><Widget/></View>", "unknown tag <Widget>"),
        ("<View><Text value='$t'/></View>", "needs a name"),
        ("<View><Text name='t'/></View>", "needs a value"),
        ("<View><Text name='t' value='$t'/><Choices name='c'><Choice value='a'/></Choices></View>", "needs a toName"),
        ("<View><Text name='t' value='$t'/><Rating name='t' toName='t'/></View>", "duplicate name 't'"),
        ("<View><Image name='i' value='$i'/><RectangleLabels name='r' toName='i'/></View>", "no <Label> children"),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><View/>", "forbidden XML feature"),
    ],
)
def test_errors_name_the_problem(config, message):
    with pytest.raises(LabelConfigError) as exc:
        parse(config)
    assert message in str(exc.value)


def test_dynamic_choices_need_their_field():
    interface = parse("<View><Text name='t' value='$t'/><Choices name='c' toName='t' value='$options'/></View>")
    assert interface.variables == {"t", "options"}
    assert missing_variables(interface, {"t": "x"}) == ["options"]
