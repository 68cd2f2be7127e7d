"""Pure parts of the model server: config parsing, examples, the classifier, on-disk state."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubelabel_model_server import classifier
from kubelabel_model_server.backend import BadRequest, TextClassificationBackend
from kubelabel_model_server.examples import Example, example_from_event, examples_from_tasks
from kubelabel_model_server.labelconfig import LabelConfigError, parse_choices_schema
from kubelabel_model_server.settings import ModelServerSettings
from kubelabel_model_server.store import ProjectStore, project_key

CONFIG = """<View>
  <Header value="Pick one"/>
  <Text name="body" value="$review"/>
  <Choices name="sentiment" toName="body" choice="single-radio">
    <Choice value="Positive"/><Choice value="Negative"/><Choice alias="Neutral" value="Meh"/>
  </Choices>
</View>"""


def choice(label: str, from_name: str = "sentiment") -> dict:
    return {"from_name": from_name, "to_name": "body", "type": "choices", "value": {"choices": [label]}}


def test_parse_choices_over_text() -> None:
    schema = parse_choices_schema(CONFIG)
    assert (schema.from_name, schema.to_name, schema.data_key) == ("sentiment", "body", "review")
    assert schema.labels == ("Positive", "Negative", "Meh")
    assert schema.multiple is False


def test_parse_picks_the_choices_that_points_at_text() -> None:
    config = """<View><Image name="img" value="$image"/><Text name="t" value="$text"/>
      <Choices name="quality" toName="img"><Choice value="ok"/><Choice value="blurry"/></Choices>
      <Choices name="topic" toName="t" choice="multiple"><Choice value="a"/><Choice value="b"/></Choices>
    </View>"""
    schema = parse_choices_schema(config)
    assert (schema.from_name, schema.data_key, schema.multiple) == ("topic", "text", True)


@pytest.mark.parametrize(
    "config",
    [
        "<View><Text name='t' value='$text'/></View>",
        "<View><Text name='t' value='$text'/><Choices name='c' toName='x'><Choice value='a'/>"
        "<Choice value='b'/></Choices></View>",
        "<View><Text name='t' value='$u' valueType='url'/><Choices name='c' toName='t'>"
        "<Choice value='a'/><Choice value='b'/></Choices></View>",
        "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='a'/></Choices></View>",
        "<View><Text",
    ],
)
def test_unusable_configs_are_refused(config: str) -> None:
    with pytest.raises(LabelConfigError):
        parse_choices_schema(config)


def test_examples_from_tasks_choose_one_label_per_task() -> None:
    schema = parse_choices_schema(CONFIG)
    tasks = [
        {  # newest annotation wins
            "id": 1,
            "data": {"review": "great"},
            "annotations": [
                {"id": 10, "updated_at": "2026-01-01T00:00:00Z", "result": [choice("Negative")]},
                {"id": 11, "updated_at": "2026-01-02T00:00:00Z", "result": [choice("Positive")]},
            ],
        },
        {  # ground truth beats a newer annotation
            "id": 2,
            "data": {"review": "bad"},
            "annotations": [
                {"id": 20, "ground_truth": True, "updated_at": "2026-01-01", "result": [choice("Negative")]},
                {"id": 21, "updated_at": "2026-01-05", "result": [choice("Positive")]},
            ],
        },
        {"id": 3, "data": {"review": "x"}, "annotations": [{"id": 30, "was_cancelled": True, "result": []}]},
        {"id": 4, "data": {"review": "y"}, "annotations": [{"id": 40, "result": [choice("Positive", "other")]}]},
        {"id": 5, "data": {"review": "z"}, "annotations": [{"id": 50, "result": [choice("Unknown")]}]},
        {"id": 6, "data": {"other": "no text"}, "annotations": [{"id": 60, "result": [choice("Positive")]}]},
        "not a task",
    ]
    examples = examples_from_tasks(tasks, schema)
    assert examples == {
        1: Example(task_id=1, text="great", label="Positive", annotation_id=11),
        2: Example(task_id=2, text="bad", label="Negative", annotation_id=20),
    }


def test_example_from_event() -> None:
    schema = parse_choices_schema(CONFIG)
    event = {"task": {"id": 7, "data": {"review": "fine"}}, "annotation": {"id": 70, "result": [choice("Meh")]}}
    assert example_from_event(event, schema) == Example(7, "fine", "Meh", 70)
    assert example_from_event({"task": {"id": 7}}, schema) is None


def test_classifier_needs_two_labels_and_scores_are_probabilities() -> None:
    with pytest.raises(classifier.NotEnoughExamples):
        classifier.train(["a", "b"], ["x", "x"])
    model = classifier.train(["good fine", "bad awful", "good great", "awful terrible"], ["P", "N", "P", "N"])
    guesses = classifier.predict(model, ["great good", "terrible bad", "unrelated words"])
    assert [g.label for g in guesses[:2]] == ["P", "N"]
    assert all(0.5 <= g.score <= 1.0 for g in guesses)
    # a text with no known word is the least certain
    assert guesses[2].score < min(guesses[0].score, guesses[1].score)


@pytest.mark.parametrize(
    ("project", "key"),
    [
        (12, "12"),
        ("12", "12"),
        ("12.1700000000", "12"),
        ({"id": 12}, "12"),
        (None, "default"),
        ("../x", "___x"),
    ],
)
def test_project_key(project: object, key: str) -> None:
    assert project_key(project) == key


def test_state_survives_a_new_backend_instance(tmp_path: Path) -> None:
    settings = ModelServerSettings(MODEL_DIR=tmp_path)
    first = TextClassificationBackend(settings)
    first.setup({"project": "3.1", "schema": CONFIG})
    texts = [("good", "Positive"), ("bad", "Negative"), ("so so", "Meh")]
    for i, (text, label) in enumerate(texts):
        outcome = first.handle_event(
            {
                "action": "ANNOTATION_CREATED",
                "project": {"id": 3},
                "task": {"id": i, "data": {"review": text}},
                "annotation": {"id": i, "result": [choice(label)]},
            }
        )
    assert outcome is not None and outcome.trained and outcome.model_version == "tfidf-logreg-v2"
    tasks = [{"id": 9, "data": {"review": "good"}}, {"id": 10, "data": {}}]
    version, results = first.predict({"project": "3.1", "tasks": tasks})  # config remembered from /setup
    assert version == "tfidf-logreg-v2"

    second = TextClassificationBackend(settings)
    assert second.setup({"project": "3.1"}) == "tfidf-logreg-v2"
    assert second.predict({"project": "3.1", "tasks": tasks}) == (version, results)
    assert results[0]["result"][0]["value"] == {"choices": ["Positive"]}
    assert results[1]["result"] == []  # a task without text gets an empty prediction, keeping alignment
    assert ProjectStore(tmp_path, "3").load_state().versions == ["tfidf-logreg-v1", "tfidf-logreg-v2"]


def test_predict_without_any_config_is_a_bad_request(tmp_path: Path) -> None:
    backend = TextClassificationBackend(ModelServerSettings(MODEL_DIR=tmp_path))
    with pytest.raises(BadRequest):
        backend.predict({"project": "5", "tasks": []})
    assert backend.handle_event({"action": "PROJECT_CREATED", "project": {"id": 5}}) is None
