"""Annotation/prediction results checked against a labeling config."""

from __future__ import annotations

import pytest

from api_server.annotations.validation import result_errors, validate_result
from api_server.common.errors import BadRequest
from api_server.labelconfig.parser import parse

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Image name="image" value="$image"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/></Choices>
  <Choices name="tags" toName="text" choice="multiple"><Choice value="a"/><Choice value="b"/></Choices>
  <Choices name="dynamic" toName="text" value="$options"/>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Car"/></PolygonLabels>
  <Rating name="stars" toName="text" maxRating="10"/>
  <Number name="count" toName="text" min="1" max="5"/>
  <TextArea name="note" toName="text"/>
  <Taxonomy name="tax" toName="text"><Choice value="Animal"><Choice value="Cat"/></Choice></Taxonomy>
  <Relations name="rel"><Relation value="knows"/></Relations>
</View>"""
UI = parse(CONFIG)


def item(from_name, type_, value, to_name="text", **extra):
    return {"from_name": from_name, "to_name": to_name, "type": type_, "value": value, **extra}


VALID = [
    item("sentiment", "choices", {"choices": ["Positive"]}),
    item("tags", "choices", {"choices": ["a", "b"]}),
    item("dynamic", "choices", {"choices": ["anything"]}),
    item("ner", "labels", {"start": 0, "end": 4, "text": "John", "labels": ["PER"]}, id="r1"),
    item("ner", "labels", {"start": 5, "end": 9, "labels": ["ORG"]}, id="r2"),
    item("box", "rectanglelabels", {"x": 1, "y": 2.5, "width": 10, "height": 5, "rectanglelabels": ["Car"]}, "image"),
    item("poly", "polygonlabels", {"points": [[1, 2], [3, 4], [5, 1]], "polygonlabels": ["Car"]}, "image"),
    item("stars", "rating", {"rating": 10}),
    item("count", "number", {"number": 3}),
    item("note", "textarea", {"text": ["free text"]}),
    item("tax", "taxonomy", {"taxonomy": [["Animal", "Cat"]]}),
    {"type": "relation", "from_id": "r1", "to_id": "r2", "direction": "right", "labels": ["knows"]},
]


def test_valid_results_pass():
    assert result_errors(UI, VALID) == {}
    validate_result(CONFIG, VALID)
    assert result_errors(UI, []) == {}


@pytest.mark.parametrize(
    ("bad", "path", "fragment"),
    [
        (item("nope", "choices", {"choices": ["Positive"]}), "result[0].from_name", "'nope' is not a control"),
        (item("sentiment", "choices", {"choices": ["Positive"]}, "image"), "result[0].to_name", "toName: text"),
        (item("sentiment", "labels", {"choices": ["Positive"]}), "result[0].type", "whose type is choices"),
        (item("sentiment", "choices", {"choices": ["Maybe"]}), "result[0].value.choices", "'Maybe' is not a choice"),
        (item("sentiment", "choices", {"choices": ["Positive", "Negative"]}), "result[0].value.choices", "single"),
        (item("sentiment", "choices", {}), "result[0].value.choices", "required"),
        (item("ner", "labels", {"start": 0, "end": 1, "labels": ["LOC"]}), "result[0].value.labels", "'LOC'"),
        (item("ner", "labels", {"labels": ["PER"]}), "result[0].value.start", "required"),
        (
            item("box", "rectanglelabels", {"x": 1, "y": 1, "rectanglelabels": ["Car"]}, "image"),
            "result[0].value.width",
            "required",
        ),
        (
            item(
                "box",
                "rectanglelabels",
                {"x": "a", "y": 1, "width": 1, "height": 1, "rectanglelabels": ["Car"]},
                "image",
            ),
            "result[0].value.x",
            "number",
        ),
        (
            item("poly", "polygonlabels", {"points": [[1]], "polygonlabels": ["Car"]}, "image"),
            "result[0].value.points",
            "[x, y]",
        ),
        (item("stars", "rating", {"rating": 11}), "result[0].value.rating", "0 to 10"),
        (item("count", "number", {"number": 6}), "result[0].value.number", "out of range 1..5"),
        (item("count", "number", {"number": "3"}), "result[0].value.number", "must be a number"),
        (item("note", "textarea", {"text": 3}), "result[0].value.text", "string"),
        (item("tax", "taxonomy", {"taxonomy": [["Plant"]]}), "result[0].value.taxonomy", "'Plant'"),
        (item("sentiment", "choices", None), "result[0].value", "required"),
        ({"type": "relation", "from_id": "x", "to_id": "y"}, "result[0].from_id", "no region with id 'x'"),
        ("not an object", "result[0]", "must be an object"),
    ],
)
def test_each_problem_names_the_item_and_field(bad, path, fragment):
    errors = result_errors(UI, [bad])
    assert path in errors, errors
    assert any(fragment in msg for msg in errors[path]), errors[path]


def test_all_problems_are_reported_with_the_item_index():
    result = [VALID[0], VALID[1], item("sentiment", "choices", {"choices": ["Maybe"]}), item("x", "rating", {})]
    with pytest.raises(BadRequest) as info:
        validate_result(CONFIG, result)
    errors = info.value.validation_errors
    assert set(errors) == {"result[2].value.choices", "result[3].from_name"}
    assert "result[2].value.choices" in info.value.detail


def test_result_must_be_a_list():
    assert result_errors(UI, {"choices": []}) == {"result": ["must be a list of result items"]}
