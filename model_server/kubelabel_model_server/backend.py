"""What the model server does for each protocol call: setup, predict, learn from events, train."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sklearn.pipeline import Pipeline

from kubelabel_model_server import classifier
from kubelabel_model_server.examples import Example, example_from_event, examples_from_tasks, task_text
from kubelabel_model_server.labelconfig import ChoicesSchema, LabelConfigError, parse_choices_schema
from kubelabel_model_server.settings import ModelServerSettings
from kubelabel_model_server.source import SourceError, fetch_annotated_tasks
from kubelabel_model_server.store import ProjectState, ProjectStore, project_key

log = logging.getLogger(__name__)

MODEL_CLASS = "TfidfTextClassifier"
TRAIN_EVENTS = {
    "ANNOTATION_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATION_DELETED",
    "ANNOTATIONS_DELETED",
    "START_TRAINING",
}


class BadRequest(ValueError):
    """The request cannot be served as sent (missing or unusable label config, ...)."""


@dataclass(frozen=True)
class TrainOutcome:
    trained: bool
    model_version: str
    examples: int
    source: str  # "api" | "events"
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "trained": self.trained,
            "model_version": self.model_version,
            "examples": self.examples,
            "source": self.source,
            "message": self.message,
        }


@dataclass
class _ApiAccess:
    url: str
    token: str | None


class TextClassificationBackend:
    def __init__(self, settings: ModelServerSettings) -> None:
        self.settings = settings
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._models: dict[str, tuple[int, Pipeline]] = {}
        # Access handed over by /setup (hostname, access_token); kept in memory only.
        self._api_from_setup: dict[str, _ApiAccess] = {}

    # --- helpers ---------------------------------------------------------------------

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _store(self, key: str) -> ProjectStore:
        return ProjectStore(self.settings.model_dir, key)

    @staticmethod
    def _schema(label_config: str | None, state: ProjectState) -> ChoicesSchema:
        config = label_config or state.label_config
        if not config:
            raise BadRequest("no label_config given and none remembered for this project (call /setup first)")
        try:
            return parse_choices_schema(config)
        except LabelConfigError as exc:
            raise BadRequest(str(exc)) from exc

    def _api_access(self, key: str) -> _ApiAccess | None:
        if self.settings.api_url:
            return _ApiAccess(self.settings.api_url, self.settings.api_token)
        return self._api_from_setup.get(key)

    def _model(self, key: str, state: ProjectState) -> Pipeline | None:
        cached = self._models.get(key)
        if cached and cached[0] == state.version_number:
            return cached[1]
        model = self._store(key).load_model() if state.version_number else None
        if model is not None:
            self._models[key] = (state.version_number, model)
        return model

    # --- protocol --------------------------------------------------------------------

    def setup(self, payload: Mapping[str, Any]) -> str:
        key = project_key(payload.get("project"))
        with self._lock(key):
            store = self._store(key)
            state = store.load_state()
            schema = payload.get("schema") or payload.get("label_config")
            if isinstance(schema, str) and schema.strip():
                self._schema(schema, state)  # refuse configs this backend cannot serve
                if schema != state.label_config:
                    state.label_config = schema
                    store.save_state(state)
            hostname, token = payload.get("hostname"), payload.get("access_token")
            if isinstance(hostname, str) and hostname.startswith(("http://", "https://")):
                self._api_from_setup[key] = _ApiAccess(hostname, token if isinstance(token, str) else None)
            return state.model_version

    def predict(self, payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        key = project_key(payload.get("project"))
        tasks = payload.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest("`tasks` must be a list")
        state = self._store(key).load_state()
        label_config = payload.get("label_config")
        schema = self._schema(label_config if isinstance(label_config, str) else None, state)
        model = self._model(key, state)
        if model is None:
            return state.model_version, []  # untrained: no predictions rather than guesses
        texts = [task_text(t, schema) if isinstance(t, Mapping) else None for t in tasks]
        readable = [t for t in texts if t is not None]
        guesses = iter(classifier.predict(model, readable))
        results = []
        for text in texts:
            if text is None:
                results.append({"result": [], "score": 0.0, "model_version": state.model_version})
                continue
            guess = next(guesses)
            item = {
                "from_name": schema.from_name,
                "to_name": schema.to_name,
                "type": "choices",
                "value": {"choices": [guess.label]},
                "score": guess.score,
            }
            results.append({"result": [item], "score": guess.score, "model_version": state.model_version})
        return state.model_version, results

    def handle_event(self, payload: Mapping[str, Any]) -> TrainOutcome | None:
        """Learn from a webhook event; None for events this backend ignores."""
        action = payload.get("action")
        if action not in TRAIN_EVENTS:
            return None
        project = payload.get("project")
        key = project_key(project)
        config = project.get("label_config") if isinstance(project, Mapping) else None
        with self._lock(key):
            state = self._store(key).load_state()
            schema = self._schema(config if isinstance(config, str) else None, state)
            update: dict[int, Example | None] = {}
            if action in {"ANNOTATION_CREATED", "ANNOTATION_UPDATED"}:
                example = example_from_event(payload, schema)
                if example is not None:
                    update[example.task_id] = example
            elif action in {"ANNOTATION_DELETED", "ANNOTATIONS_DELETED"}:
                update.update(self._deleted(payload, self._store(key).load_examples()))
            if action != "START_TRAINING" and not self.settings.train_on_annotation:
                return self._remember(key, state, update)
            return self._fit(key, state, schema, config if isinstance(config, str) else None, update)

    def train(self, payload: Mapping[str, Any]) -> TrainOutcome:
        """Legacy POST /train: annotated tasks in the body, merged with everything known."""
        key = project_key(payload.get("project"))
        config = payload.get("label_config")
        with self._lock(key):
            state = self._store(key).load_state()
            schema = self._schema(config if isinstance(config, str) else None, state)
            sent: list[Any] = []
            for field in ("tasks", "annotations"):
                value = payload.get(field)
                if isinstance(value, list):
                    sent.extend(_as_task(item) for item in value)
            update: dict[int, Example | None] = dict(examples_from_tasks(sent, schema))
            return self._fit(key, state, schema, config if isinstance(config, str) else None, update)

    def versions(self, project: object) -> tuple[str, list[str]]:
        state = self._store(project_key(project)).load_state()
        return state.model_version, list(state.versions)

    # --- training --------------------------------------------------------------------

    @staticmethod
    def _deleted(payload: Mapping[str, Any], known: dict[int, Example]) -> dict[int, Example | None]:
        ids: set[int] = set()
        for item in [payload.get("annotation"), *(payload.get("annotations") or [])]:
            if isinstance(item, Mapping) and isinstance(item.get("id"), int):
                ids.add(item["id"])
        return {task_id: None for task_id, ex in known.items() if ex.annotation_id in ids}

    def _remember(self, key: str, state: ProjectState, update: dict[int, Example | None]) -> TrainOutcome:
        """Keep the event's example for the next training run without training now."""
        examples = _merged(self._store(key).load_examples(), update)
        self._store(key).save_examples(examples)
        return TrainOutcome(False, state.model_version, len(examples), "events", "recorded; training on START_TRAINING")

    def _fit(
        self,
        key: str,
        state: ProjectState,
        schema: ChoicesSchema,
        label_config: str | None,
        update: dict[int, Example | None],
    ) -> TrainOutcome:
        """Train on every annotated task of the project (caller holds the project lock)."""
        store = self._store(key)
        examples = _merged(store.load_examples(), update)
        source, message = "events", ""
        access = self._api_access(key)
        if access is not None:
            try:
                tasks = fetch_annotated_tasks(access.url, access.token, key, self.settings.api_timeout)
                examples, source = examples_from_tasks(tasks, schema), "api"
            except SourceError as exc:
                message = f"{exc}; trained on the examples received by events"
                log.warning("project %s: %s", key, message)
        store.save_examples(examples)
        if label_config:
            state.label_config = label_config
        ordered = sorted(examples.values(), key=lambda e: e.task_id)
        try:
            model = classifier.train([e.text for e in ordered], [e.label for e in ordered])
        except classifier.NotEnoughExamples as exc:
            store.save_state(state)
            return TrainOutcome(False, state.model_version, len(ordered), source, str(exc))
        state.version_number += 1
        state.trained_at = datetime.now(UTC).isoformat()
        state.train_examples = len(ordered)
        state.classes = [str(c) for c in model.classes_]
        state.versions = [*state.versions, state.model_version][-50:]
        store.save_model(model)
        store.save_state(state)
        self._models[key] = (state.version_number, model)
        log.info("project %s: trained %s on %d examples", key, state.model_version, len(ordered))
        return TrainOutcome(True, state.model_version, len(ordered), source, message)


def _merged(examples: dict[int, Example], update: dict[int, Example | None]) -> dict[int, Example]:
    """Examples with an update applied (None removes the task's example)."""
    for task_id, example in update.items():
        if example is None:
            examples.pop(task_id, None)
        else:
            examples[task_id] = example
    return examples


def _as_task(item: Any) -> Any:
    """Accept a task with annotations, or an annotation carrying its task (older /train bodies)."""
    if isinstance(item, Mapping) and "data" not in item and isinstance(item.get("task"), Mapping):
        return {**item["task"], "annotations": [item]}
    if isinstance(item, Mapping) and "data" in item and "annotations" not in item and "result" in item:
        return {**item, "annotations": [item]}
    return item
