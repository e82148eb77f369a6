"""Initial schema: users, visualizations (+ tags, annotations, full-text search),
comparisons, grants, share links, audit events, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Types are spelled out here rather than imported from db.models, so this revision keeps
creating the same schema whatever the models become.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MAX_ATTENTION_BYTES = 8 * 1024 * 1024


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _fk(column: str, target: str, table: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


# Postgres: one weighted tsvector over everything searchable, generated on every write.
# Annotation text is cut at 100k characters so a tsvector never nears its 1 MB limit.
PG_SEARCH_VECTOR = """
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, coalesce(input_text, '')), 'B')
    || setweight(to_tsvector('english'::regconfig, coalesce(generated_text, '')), 'C')
    || setweight(to_tsvector('english'::regconfig, left(coalesce(annotation_text, ''), 100000)), 'B')
"""

# SQLite: an external-content FTS5 table (no second copy of the text) kept in step by triggers.
FTS_COLUMNS = "title, input_text, generated_text, annotation_text"
SQLITE_SEARCH = [
    f"""CREATE VIRTUAL TABLE visualizations_fts USING fts5(
        {FTS_COLUMNS}, content='visualizations', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER visualizations_fts_insert AFTER INSERT ON visualizations BEGIN
        INSERT INTO visualizations_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.input_text, new.generated_text, new.annotation_text);
    END""",
    f"""CREATE TRIGGER visualizations_fts_delete AFTER DELETE ON visualizations BEGIN
        INSERT INTO visualizations_fts(visualizations_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.input_text, old.generated_text, old.annotation_text);
    END""",
    f"""CREATE TRIGGER visualizations_fts_update
        AFTER UPDATE OF {FTS_COLUMNS} ON visualizations BEGIN
        INSERT INTO visualizations_fts(visualizations_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.input_text, old.generated_text, old.annotation_text);
        INSERT INTO visualizations_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.input_text, new.generated_text, new.annotation_text);
    END""",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("password_hash", sa.String(100), nullable=True),
        sa.Column("role", _enum("user_role", "admin", "analyst", "viewer", "guest"), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        _ts("locked_until", nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("failed_logins >= 0", name=op.f("ck_users_failed_logins_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_created_at"), "users", ["created_at"])
    op.create_index(op.f("ix_users_role"), "users", ["role"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("detail", _json(), nullable=False),
        _ts("at"),
        _fk("actor_id", "users.id", "audit_events", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])
    op.create_index(op.f("ix_audit_events_actor_id"), "audit_events", ["actor_id"])
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index("ix_audit_events_target", "audit_events", ["target_type", "target_id"])

    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("model_a_id", sa.String(200), nullable=False),
        sa.Column("model_a_revision", sa.String(200), nullable=False),
        sa.Column("model_b_id", sa.String(200), nullable=False),
        sa.Column("model_b_revision", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint(f"length(result) <= {MAX_ATTENTION_BYTES}", name=op.f("ck_comparisons_result_size")),
        _fk("owner_id", "users.id", "comparisons"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comparisons")),
    )
    op.create_index("ix_comparisons_created", "comparisons", ["created_at", "id"])
    op.create_index("ix_comparisons_deleted_at", "comparisons", ["deleted_at"])
    op.create_index(op.f("ix_comparisons_model_a_id"), "comparisons", ["model_a_id"])
    op.create_index(op.f("ix_comparisons_model_b_id"), "comparisons", ["model_b_id"])
    op.create_index("ix_comparisons_owner_created", "comparisons", ["owner_id", "created_at", "id"])
    op.create_index("ix_comparisons_public_created", "comparisons", ["is_public", "created_at"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column(
            "status", _enum("job_status", "queued", "running", "completed", "failed", "cancelled"), nullable=False
        ),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("result", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("updated_at"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_jobs_progress_range")),
        _fk("owner_id", "users.id", "jobs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"])
    op.create_index(op.f("ix_jobs_kind"), "jobs", ["kind"])
    op.create_index(op.f("ix_jobs_owner_id"), "jobs", ["owner_id"])
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])

    op.create_table(
        "visualizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("model_revision", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("generated_text", sa.Text(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("model_info", _json(), nullable=False),
        sa.Column("token_data", _json(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("head_stats", _json(), nullable=False),
        sa.Column("compact_attention", sa.LargeBinary(), nullable=False),
        sa.Column("timings", _json(), nullable=False),
        sa.Column("annotation_text", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint(
            f"length(compact_attention) <= {MAX_ATTENTION_BYTES}",
            name=op.f("ck_visualizations_compact_attention_size"),
        ),
        sa.CheckConstraint("length(title) > 0", name=op.f("ck_visualizations_title_not_empty")),
        sa.CheckConstraint("token_count >= 0", name=op.f("ck_visualizations_token_count_non_negative")),
        _fk("owner_id", "users.id", "visualizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visualizations")),
    )
    op.create_index("ix_visualizations_created", "visualizations", ["created_at", "id"])
    op.create_index("ix_visualizations_deleted_at", "visualizations", ["deleted_at"])
    op.create_index("ix_visualizations_model_created", "visualizations", ["model_id", "created_at"])
    op.create_index("ix_visualizations_owner_created", "visualizations", ["owner_id", "created_at", "id"])
    op.create_index("ix_visualizations_public_created", "visualizations", ["is_public", "created_at"])
    op.create_index("ix_visualizations_title", "visualizations", ["title", "id"])

    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visualization_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("layer", sa.Integer(), nullable=True),
        sa.Column("head", sa.Integer(), nullable=True),
        sa.Column("token_start", sa.Integer(), nullable=True),
        sa.Column("token_end", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "(layer IS NULL OR layer >= 0) AND (head IS NULL OR head >= 0) "
            "AND (token_start IS NULL OR token_start >= 0)",
            name=op.f("ck_annotations_positions_non_negative"),
        ),
        sa.CheckConstraint("head IS NULL OR layer IS NOT NULL", name=op.f("ck_annotations_head_needs_layer")),
        sa.CheckConstraint(
            "token_start IS NULL OR token_end IS NULL OR token_start <= token_end",
            name=op.f("ck_annotations_token_range_ordered"),
        ),
        _fk("author_id", "users.id", "annotations"),
        _fk("visualization_id", "visualizations.id", "annotations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
    )
    op.create_index(op.f("ix_annotations_author_id"), "annotations", ["author_id"])
    op.create_index("ix_annotations_visualization_created", "annotations", ["visualization_id", "created_at"])

    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visualization_id", sa.Integer(), nullable=True),
        sa.Column("comparison_id", sa.Integer(), nullable=True),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.CheckConstraint(
            "(visualization_id IS NULL) <> (comparison_id IS NULL)", name=op.f("ck_grants_one_target")
        ),
        _fk("comparison_id", "comparisons.id", "grants", ondelete="CASCADE"),
        _fk("granted_by", "users.id", "grants"),
        _fk("grantee_id", "users.id", "grants", ondelete="CASCADE"),
        _fk("visualization_id", "visualizations.id", "grants", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.UniqueConstraint("comparison_id", "grantee_id", name=op.f("uq_grants_comparison_id_grantee_id")),
        sa.UniqueConstraint(
            "visualization_id", "grantee_id", name=op.f("uq_grants_visualization_id_grantee_id")
        ),
    )
    op.create_index(op.f("ix_grants_granted_by"), "grants", ["granted_by"])
    op.create_index("ix_grants_grantee", "grants", ["grantee_id", "revoked_at"])

    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visualization_id", sa.Integer(), nullable=True),
        sa.Column("comparison_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.CheckConstraint(
            "(visualization_id IS NULL) <> (comparison_id IS NULL)", name=op.f("ck_share_links_one_target")
        ),
        _fk("comparison_id", "comparisons.id", "share_links", ondelete="CASCADE"),
        _fk("created_by", "users.id", "share_links"),
        _fk("visualization_id", "visualizations.id", "share_links", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_links_token_hash")),
    )
    op.create_index(op.f("ix_share_links_comparison_id"), "share_links", ["comparison_id"])
    op.create_index(op.f("ix_share_links_created_by"), "share_links", ["created_by"])
    op.create_index(op.f("ix_share_links_expires_at"), "share_links", ["expires_at"])
    op.create_index(op.f("ix_share_links_visualization_id"), "share_links", ["visualization_id"])

    op.create_table(
        "visualization_tags",
        sa.Column("visualization_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        _fk("visualization_id", "visualizations.id", "visualization_tags", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("visualization_id", "tag", name=op.f("pk_visualization_tags")),
    )
    op.create_index("ix_visualization_tags_tag", "visualization_tags", ["tag", "visualization_id"])

    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE visualizations ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({PG_SEARCH_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_visualizations_search_vector ON visualizations USING gin (search_vector)")
    else:
        for statement in SQLITE_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS visualizations_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS visualizations_fts")
    # Dropping a table drops its indexes (and, on Postgres, the generated search column).
    for table in (
        "visualization_tags",
        "share_links",
        "grants",
        "annotations",
        "visualizations",
        "jobs",
        "comparisons",
        "audit_events",
        "users",
    ):
        op.drop_table(table)
