"""Request log (per-model analytics and drift), analysis presets and their favourites.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

New tables:

- ``analysis_requests``: one row per analysis request (served from the cache, run on the
  model, or failed): time, model id + revision, user (nullable: guests, deleted users),
  mode, latency, cache hit, tokens processed, error kind and message, input length, and a
  token-frequency profile over hashed token-id buckets (`core.drift`) that never holds the
  raw text. Read by `core.model_analytics` and `core.drift`.
- ``presets``: saved analysis settings of the Generate or Compare screen (owner, name,
  screen, settings JSON, public flag, timestamps, soft delete).
- ``preset_favourites``: one row per (user, preset) starred.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


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
    op.create_table(
        "analysis_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("request_id", sa.String(32), nullable=True),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_revision", sa.String(200), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("input_chars", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("token_profile", _json(), nullable=True),
        sa.Column("error_kind", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "latency_s >= 0 AND tokens >= 0 AND input_chars >= 0",
            name=op.f("ck_analysis_requests_amounts_non_negative"),
        ),
        sa.CheckConstraint(
            "error_message IS NULL OR error_kind IS NOT NULL",
            name=op.f("ck_analysis_requests_message_needs_kind"),
        ),
        _fk("user_id", "users.id", "analysis_requests", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_requests")),
    )
    op.create_index("ix_analysis_requests_model_at", "analysis_requests", ["model_id", "at"])
    op.create_index("ix_analysis_requests_at", "analysis_requests", ["at"])
    op.create_index("ix_analysis_requests_user_at", "analysis_requests", ["user_id", "at"])

    op.create_table(
        "presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column(
            "screen",
            sa.Enum(
                "generate", "compare", name="preset_screen", native_enum=False,
                create_constraint=True, length=16,
            ),
            nullable=False,
        ),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_presets_name_not_empty")),
        _fk("owner_id", "users.id", "presets", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presets")),
    )
    op.create_index("ix_presets_owner_updated", "presets", ["owner_id", "updated_at"])
    op.create_index("ix_presets_public_updated", "presets", ["is_public", "updated_at"])
    op.create_index("ix_presets_deleted_at", "presets", ["deleted_at"])

    op.create_table(
        "preset_favourites",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("preset_id", sa.Integer(), nullable=False),
        _ts("created_at"),
        _fk("user_id", "users.id", "preset_favourites", ondelete="CASCADE"),
        _fk("preset_id", "presets.id", "preset_favourites", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "preset_id", name=op.f("pk_preset_favourites")),
    )
    op.create_index("ix_preset_favourites_preset_id", "preset_favourites", ["preset_id"])


def downgrade() -> None:
    for table in ("preset_favourites", "presets", "analysis_requests"):
        op.drop_table(table)
