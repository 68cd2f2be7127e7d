"""Storage credentials from a mounted Secret directory or the environment, never logged.

The recognised keys are fixed by the storage sync Job contract: each is read from a file of
that name in the credentials directory (a Kubernetes Secret mounted as files) or, failing
that, from an environment variable of the same name. Values are held in a frozen object
whose repr masks them, so an accidental log line or traceback never shows a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

CREDENTIALS_DIR_ENV = "KUBELABEL_STORAGE_CREDENTIALS_DIR"
DEFAULT_CREDENTIALS_DIR = "/var/run/secrets/kubelabel/storage"

KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)


@dataclass(frozen=True)
class Credentials:
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    google_application_credentials_json: str | None = field(default=None, repr=False)
    azure_storage_connection_string: str | None = field(default=None, repr=False)
    azure_storage_account_name: str | None = field(default=None, repr=False)
    azure_storage_account_key: str | None = field(default=None, repr=False)
    azure_storage_sas_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        present = [f.name for f in fields(self) if getattr(self, f.name)]
        return f"Credentials(present={present})"

    __str__ = __repr__

    def present(self) -> list[str]:
        """Names (never values) of the keys that are set."""
        return [f.name for f in fields(self) if getattr(self, f.name)]

    def merged(self, override: Credentials) -> Credentials:
        """These credentials with every key set in `override` replaced."""
        values = {f.name: getattr(override, f.name) or getattr(self, f.name) for f in fields(self)}
        return Credentials(**values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str | None]) -> Credentials:
        """From a mapping of the contract's key names (upper case) or the field names."""
        kwargs: dict[str, str] = {}
        for f in fields(cls):
            value = values.get(f.name.upper()) or values.get(f.name)
            if value:
                kwargs[f.name] = value.strip() if f.name != "google_application_credentials_json" else value
        return cls(**kwargs)


def load_credentials(
    directory: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Read the recognised keys: a file in `directory` wins over a same-named env var."""
    env = os.environ if environ is None else environ
    base = Path(directory or env.get(CREDENTIALS_DIR_ENV) or DEFAULT_CREDENTIALS_DIR)
    values: dict[str, str] = {}
    for key in KEYS:
        path = base / key
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            text = env.get(key, "")
        if text.strip():
            values[key] = text
    return Credentials.from_mapping(values)
