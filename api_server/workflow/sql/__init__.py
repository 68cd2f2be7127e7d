"""The labeling loop's PostgreSQL functions, one file per version: `<function>.v<N>.sql`.

Each file is the CREATE OR REPLACE statement a migration runs, its body byte for byte what the
database stores, so `pg_get_functiondef` of a live database can be compared with its file. A
version once released never changes: a change is a new file and a new migration that loads it
on upgrade and loads the version before on downgrade (workflow/pg_loop.py calls the functions).
"""

from __future__ import annotations

from importlib import resources


def function(name: str, version: int) -> str:
    """The statement that installs version `version` of the function `name`."""
    return resources.files(__name__).joinpath(f"{name}.v{version}.sql").read_text(encoding="utf-8")
