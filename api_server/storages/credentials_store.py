"""Credentials of a stored storage: the write-only fields given through the API.

Kept in the row's `credentials` document under Label Studio's field names and turned into
a `Credentials` only where a provider is built. An empty document means ambient identity
(instance role, workload identity, the SDKs' own environment variables).
"""

from __future__ import annotations

from api_server.db.models import ExportStorage, ImportStorage
from api_server.storages.config import credentials_from_fields
from api_server.storages.providers import Credentials


def credentials_of(storage: ImportStorage | ExportStorage) -> Credentials:
    values = dict(storage.credentials or {})
    account = (storage.settings or {}).get("account_name")
    if account and "account_name" not in values:
        values["account_name"] = account
    return credentials_from_fields(storage.type, values)
