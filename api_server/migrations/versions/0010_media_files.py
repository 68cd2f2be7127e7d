"""media files uploaded to a project

`POST /api/projects/{id}/import` with image, audio, video or PDF files stores each file under a
generated name (in the data directory or the project's import storage) and records it here;
`GET /data/upload/{project}/{name}` serves it to the project's members.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("file_upload_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_media_files_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["file_upload_id"],
            ["file_uploads.id"],
            name=op.f("fk_media_files_file_upload_id_file_uploads"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["storage_id"],
            ["import_storages.id"],
            name=op.f("fk_media_files_storage_id_import_storages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
        sa.UniqueConstraint("project_id", "name", name="uq_media_files_project_name"),
    )


def downgrade() -> None:
    op.drop_table("media_files")
