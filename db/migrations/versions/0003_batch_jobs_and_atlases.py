"""Datasets, row-based jobs with a timeline, head atlases, and grants on atlases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

New tables: datasets and dataset_rows (uploaded corpora), tokenization_stats (one per
dataset and model revision), job_events (each job's timeline), job_rows (a job's result
per dataset row, unique per job and row so a resumed job never counts a row twice) and
atlases (saved head atlases). ``jobs`` gains row counts, the cancel flag, the worker and
its heartbeat. ``grants`` gains ``atlas_id``; its one-target check now counts three
targets. Types are spelled out, as in 0001.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TWO_TARGETS = "(visualization_id IS NULL) <> (comparison_id IS NULL)"
THREE_TARGETS = (
    "(CASE WHEN visualization_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN comparison_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN atlas_id IS NULL THEN 0 ELSE 1 END) = 1"
)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, target: str, table: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("rows_total", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rows_done", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rows_failed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("worker", sa.String(200), nullable=True))
        batch.add_column(_ts("heartbeat_at", nullable=True))

    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("text_column", sa.String(200), nullable=True),
        sa.Column("source_filename", sa.String(255), nullable=True),
        sa.Column("builtin_key", sa.String(64), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("report", _json(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint("row_count >= 0", name=op.f("ck_datasets_row_count_non_negative")),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_datasets_name_not_empty")),
        _fk("owner_id", "users.id", "datasets", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("builtin_key", name=op.f("uq_datasets_builtin_key")),
    )
    op.create_index("ix_datasets_owner_created", "datasets", ["owner_id", "created_at"])
    op.create_index("ix_datasets_deleted_at", "datasets", ["deleted_at"])

    op.create_table(
        "dataset_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _fk("dataset_id", "datasets.id", "dataset_rows", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_rows")),
        sa.UniqueConstraint("dataset_id", "position", name=op.f("uq_dataset_rows_dataset_id_position")),
    )

    op.create_table(
        "tokenization_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_revision", sa.String(200), nullable=False),
        sa.Column("stats", _json(), nullable=False),
        _ts("created_at"),
        _fk("dataset_id", "datasets.id", "tokenization_stats", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokenization_stats")),
        sa.UniqueConstraint(
            "dataset_id",
            "model_id",
            "model_revision",
            name=op.f("uq_tokenization_stats_dataset_id_model_id_model_revision"),
        ),
    )

    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("detail", _json(), nullable=False),
        _ts("at"),
        _fk("job_id", "jobs.id", "job_events", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index("ix_job_events_job", "job_events", ["job_id", "id"])

    op.create_table(
        "job_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "claimed", "done", "failed", name="job_row_status", native_enum=False,
                create_constraint=True, length=16,
            ),
            nullable=False,
        ),
        sa.Column("worker", sa.String(200), nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("scores", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("job_id", "jobs.id", "job_rows", ondelete="CASCADE"),
        _fk("row_id", "dataset_rows.id", "job_rows", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_rows")),
        sa.UniqueConstraint("job_id", "row_id", name=op.f("uq_job_rows_job_id_row_id")),
    )
    op.create_index("ix_job_rows_job_status", "job_rows", ["job_id", "status"])
    op.create_index("ix_job_rows_row_id", "job_rows", ["row_id"])

    op.create_table(
        "atlases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_revision", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("n_layers", sa.Integer(), nullable=False),
        sa.Column("n_heads", sa.Integer(), nullable=False),
        sa.Column("rows_used", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_atlases_title_not_empty")),
        _fk("owner_id", "users.id", "atlases"),
        _fk("job_id", "jobs.id", "atlases", ondelete="SET NULL"),
        _fk("dataset_id", "datasets.id", "atlases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atlases")),
        sa.UniqueConstraint("job_id", name=op.f("uq_atlases_job_id")),
    )
    op.create_index("ix_atlases_owner_created", "atlases", ["owner_id", "created_at", "id"])
    op.create_index("ix_atlases_created", "atlases", ["created_at", "id"])
    op.create_index("ix_atlases_public_created", "atlases", ["is_public", "created_at"])
    op.create_index("ix_atlases_deleted_at", "atlases", ["deleted_at"])
    op.create_index("ix_atlases_dataset_id", "atlases", ["dataset_id"])

    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("atlas_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_grants_atlas_id_atlases"), "atlases", ["atlas_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_unique_constraint(op.f("uq_grants_atlas_id_grantee_id"), ["atlas_id", "grantee_id"])
        batch.drop_constraint(op.f("ck_grants_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_grants_one_target"), THREE_TARGETS)


def downgrade() -> None:
    op.execute("DELETE FROM grants WHERE atlas_id IS NOT NULL")
    with op.batch_alter_table("grants") as batch:
        batch.drop_constraint(op.f("ck_grants_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_grants_one_target"), TWO_TARGETS)
        batch.drop_constraint(op.f("uq_grants_atlas_id_grantee_id"), type_="unique")
        batch.drop_constraint(op.f("fk_grants_atlas_id_atlases"), type_="foreignkey")
        batch.drop_column("atlas_id")
    for table in ("atlases", "job_rows", "job_events", "tokenization_stats", "dataset_rows", "datasets"):
        op.drop_table(table)
    with op.batch_alter_table("jobs") as batch:
        for column in ("heartbeat_at", "worker", "cancel_requested", "rows_failed", "rows_done", "rows_total"):
            batch.drop_column(column)
