"""Start-up state from the environment: the admin user and the provisioned project.

Both are idempotent: restarting the server (or running several replicas) converges on
the same rows.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.errors import ApiError
from api_server.db.models import Project, ProjectMember, Task, User
from api_server.imports.service import ImportJob
from api_server.labelconfig.parser import LabelConfigError, parse
from api_server.settings import Settings
from api_server.users.roles import Role
from api_server.users.service import by_username, create_user, ensure_admin, ensure_admin_password

log = logging.getLogger(__name__)

# Fields of the project file (written by the operator into the project's ConfigMap).
PROJECT_FILE_FIELDS = (
    "title",
    "description",
    "expert_instruction",
    "label_config",
    "maximum_annotations",
    "sampling",
    "show_skip_button",
    "review_required",
    "show_instruction",
    "task_lock_ttl",
    "min_annotations_to_start_training",
)
PROVISIONED_PROJECT_ID = 1


def bootstrap(session_factory: sessionmaker[Session], settings: Settings) -> None:
    with session_factory() as session:
        admin = None
        if settings.admin_token:
            admin = ensure_admin(session, username=settings.admin_username, token=settings.admin_token)
            session.commit()
            log.info("admin user %r is ready", admin.username)
        if settings.admin_password is not None:
            admin = _admin_with_password(session, admin, settings)
        if settings.project_file is not None:
            spec = orjson.loads(settings.project_file.read_bytes())
            project = upsert_provisioned_project(session, spec, admin_id=admin.id if admin else None)
            session.commit()
            if settings.seed_tasks is not None:
                seed_tasks(session, project, admin, orjson.loads(settings.seed_tasks.read_bytes()))


def _admin_with_password(session: Session, admin: User | None, settings: Settings) -> User:
    """The bootstrap admin (the token's, else the one named KUBELABEL_ADMIN_USERNAME, created when
    missing) with exactly KUBELABEL_ADMIN_PASSWORD; unchanged when it already has it."""
    assert settings.admin_password is not None
    if admin is None:
        admin = by_username(session, settings.admin_username)
        if admin is None:
            admin = create_user(session, username=settings.admin_username, role=Role.admin)
        admin.role = Role.admin.value
    try:
        changed = ensure_admin_password(session, admin, settings.admin_password.get_secret_value())
    except ApiError as exc:  # a start-up setting: one clear line, not a traceback
        raise SystemExit(f"KUBELABEL_ADMIN_PASSWORD: {exc.detail.removeprefix('password: ')}") from None
    session.commit()
    if changed:
        log.info("admin user %r: password set from KUBELABEL_ADMIN_PASSWORD", admin.username)
    return admin


def upsert_provisioned_project(session: Session, spec: dict[str, Any], *, admin_id: int | None) -> Project:
    """Create or update project 1 from the operator's project file."""
    unknown = set(spec) - set(PROJECT_FILE_FIELDS) - {"webhooks"}
    if unknown:
        log.warning("project file: ignoring unknown fields %s", sorted(unknown))
    if "label_config" in spec:
        try:
            parse(spec["label_config"])
        except LabelConfigError as exc:
            raise SystemExit(f"project file: invalid label_config: {exc}") from None
    project = session.get(Project, PROVISIONED_PROJECT_ID)
    if project is None:
        project = Project(id=PROVISIONED_PROJECT_ID, created_by_id=admin_id)
        session.add(project)
    for key in PROJECT_FILE_FIELDS:
        if key in spec and spec[key] is not None:
            setattr(project, key, spec[key])
    session.flush()
    if admin_id is not None and session.get(ProjectMember, (project.id, admin_id)) is None:
        session.add(ProjectMember(project_id=project.id, user_id=admin_id, role=Role.manager.value))
    # Declared webhooks converge on the file (none declared: provisioned ones are removed).
    from api_server.webhooks.provisioning import converge

    converge(session, project.id, spec.get("webhooks") or [])
    return project


def seed_tasks(session: Session, project: Project, admin: User | None, tasks: list[dict[str, Any]]) -> None:
    """Load sample tasks into an empty project (never into one that already has tasks).

    They go through the import path like any upload, so they are validated the same way.
    """
    if session.scalar(select(Task.id).where(Task.project_id == project.id).limit(1)) is not None:
        return
    if admin is None:
        log.warning(
            "KUBELABEL_SEED_TASKS needs KUBELABEL_ADMIN_TOKEN or KUBELABEL_ADMIN_PASSWORD (the admin imports them)"
        )
        return
    job = ImportJob(session, admin, project.id)
    try:
        job.add(enumerate(tasks, start=1))
        imported = job.finish()
    finally:
        job.close()
    log.info("loaded %d sample tasks into project %d", imported.task_count, project.id)
