"""The live model registry: one row per model version.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

``registered_models`` holds what `core.registry.ModelSpec` describes (id, label, kind,
source, revision, licence, token limit, chat template) plus the admin's state: enabled,
the default (at most one row, by a partial unique index), origin (seeded from models.yaml
or added by an admin), who added it and when. The rows are seeded from models.yaml when
the service first reads the registry (`core.live_registry`), not here, so a migration never
depends on the file.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("licence", sa.String(200), nullable=False),
        sa.Column("max_input_tokens", sa.Integer(), nullable=False),
        sa.Column("chat_template", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column(
            "origin",
            sa.Enum("seed", "admin", name="model_origin", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('causal', 'encoder')", name=op.f("ck_registered_models_kind_known")),
        sa.CheckConstraint(
            "max_input_tokens >= 8", name=op.f("ck_registered_models_max_input_tokens_positive")
        ),
        sa.CheckConstraint(
            "NOT (is_default AND NOT enabled)", name=op.f("ck_registered_models_default_enabled")
        ),
        sa.ForeignKeyConstraint(
            ["added_by_id"],
            ["users.id"],
            name=op.f("fk_registered_models_added_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("model_id", name=op.f("uq_registered_models_model_id")),
    )
    op.create_index("ix_registered_models_family", "registered_models", ["family", "created_at"])
    op.create_index(op.f("ix_registered_models_added_by_id"), "registered_models", ["added_by_id"])
    op.create_index(
        "uq_registered_models_one_default",
        "registered_models",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default = 1"),
        postgresql_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_index("uq_registered_models_one_default", table_name="registered_models")
    op.drop_index(op.f("ix_registered_models_added_by_id"), table_name="registered_models")
    op.drop_index("ix_registered_models_family", table_name="registered_models")
    op.drop_table("registered_models")
