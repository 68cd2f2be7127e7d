"""Per-project model state on disk (MODEL_DIR), so a restarted server keeps its model.

Layout: MODEL_DIR/project-<key>/{state.json, examples.json, model.joblib}. Every file is
written to a temporary name and renamed, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
from sklearn.pipeline import Pipeline

from kubelabel_model_server.examples import Example

MODEL_NAME = "tfidf-logreg"


def version_name(number: int) -> str:
    return f"{MODEL_NAME}-v{number}"


@dataclass
class ProjectState:
    version_number: int = 0  # 0: never trained
    label_config: str | None = None
    trained_at: str | None = None
    train_examples: int = 0
    classes: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)

    @property
    def model_version(self) -> str:
        return version_name(self.version_number)


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def project_key(project: object) -> str:
    """`12`, `"12"`, `"12.1700000000"` (Label Studio's `<id>.<created>`) and `{"id": 12}` -> "12"."""
    if isinstance(project, dict):
        project = project.get("id")
    text = str(project if project is not None else "default")
    label_studio_form = re.fullmatch(r"(\d+)\.\d+", text)
    if label_studio_form:
        text = label_studio_form.group(1)
    key = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64]
    return key or "default"


class ProjectStore:
    def __init__(self, model_dir: Path, key: str) -> None:
        self.dir = model_dir / f"project-{key}"

    def load_state(self) -> ProjectState:
        path = self.dir / "state.json"
        if not path.exists():
            return ProjectState()
        data = json.loads(path.read_text())
        known = ProjectState.__dataclass_fields__
        return ProjectState(**{k: v for k, v in data.items() if k in known})

    def save_state(self, state: ProjectState) -> None:
        body = json.dumps(asdict(state), indent=1).encode()
        _atomic_write(self.dir / "state.json", lambda h: h.write(body))

    def load_examples(self) -> dict[int, Example]:
        path = self.dir / "examples.json"
        if not path.exists():
            return {}
        return {int(k): Example(**v) for k, v in json.loads(path.read_text()).items()}

    def save_examples(self, examples: dict[int, Example]) -> None:
        body = json.dumps({str(k): asdict(v) for k, v in examples.items()}).encode()
        _atomic_write(self.dir / "examples.json", lambda h: h.write(body))

    def load_model(self) -> Pipeline | None:
        path = self.dir / "model.joblib"
        return joblib.load(path) if path.exists() else None

    def save_model(self, model: Pipeline) -> None:
        _atomic_write(self.dir / "model.joblib", lambda h: joblib.dump(model, h))
