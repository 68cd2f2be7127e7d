"""Model server settings from the environment (names follow label-studio-ml where one exists)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    model_dir: Path = Field(default=Path("./data/model"), alias="MODEL_DIR")
    # Where to read the project's annotated tasks for training; optional (without it the
    # server learns from the annotations that webhook events carry).
    api_url: str | None = Field(default=None, validation_alias=AliasChoices("KUBELABEL_API_URL", "LABEL_STUDIO_URL"))
    api_token: str | None = Field(
        default=None, validation_alias=AliasChoices("KUBELABEL_API_TOKEN", "LABEL_STUDIO_API_KEY"), repr=False
    )
    api_timeout: float = Field(default=30.0, gt=0, alias="MODEL_SERVER_API_TIMEOUT")
    # Label Studio backends train on every annotation event; with false, annotation events
    # only add examples and training waits for START_TRAINING (kubelabel sends it every N
    # annotations, see the project's min_annotations_to_start_training).
    train_on_annotation: bool = Field(default=True, alias="MODEL_SERVER_TRAIN_ON_ANNOTATION")
    basic_auth_user: str | None = Field(default=None, alias="BASIC_AUTH_USER")
    basic_auth_pass: str | None = Field(default=None, alias="BASIC_AUTH_PASS", repr=False)
