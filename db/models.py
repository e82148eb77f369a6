"""The relational schema: one `DeclarativeBase`, typed columns, named constraints.

Tables: users, visualizations (saved analyses) with their tags and annotations,
comparisons, grants (one user lets another read a record), share links (token hash only),
audit events and jobs; for batch work (revision 0003) datasets and their rows, tokenization
statistics, each job's timeline and per-row results, and head atlases. Every foreign key and
every filtered or sorted column leads an index.

Full-text search lives outside the ORM because it is dialect specific; the Alembic
migrations create it: on Postgres a generated ``search_vector`` tsvector column, indexed by
one GIN index together with ``filter_terms`` (see `PG_FILTER_TERMS`); on SQLite an FTS5
table ``visualizations_fts`` kept in step by triggers. Both index title, input text,
generated text and ``annotation_text`` (the bodies of a visualization's annotations,
denormalised on every annotation write).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from core.domain.identity import Role
from core.domain.presets import PresetScreen

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The compact attention form (core/attention/compact.py) is built to at most 8 MiB by default; the
# store refuses anything larger so one row can never grow without bound.
MAX_ATTENTION_BYTES = 8 * 1024 * 1024
MAX_TITLE_CHARS = 200
MAX_TAG_CHARS = 40
MAX_ANNOTATION_CHARS = 5_000

JSONType = JSON().with_variant(JSONB(), "postgresql")

# Postgres-only columns made by the migrations and left unmapped (SQLite has no equivalent):
# the full-text vector, and the filter terms indexed with it (revision 0002), one per fact
# a history list filters on: "public" or "private", "owner:<id>", "model:<id>",
# "user:<id>" for each user holding a live grant, and "tag:<tag>" for each tag.
PG_SEARCH_VECTOR = literal_column("visualizations.search_vector")
PG_FILTER_TERMS = literal_column("visualizations.filter_terms", ARRAY(Text))
PUBLIC_TERM = "public"


def owner_term(user_id: int) -> str:
    return f"owner:{user_id}"


def grantee_term(user_id: int) -> str:
    return f"user:{user_id}"


def model_term(model_id: str) -> str:
    return f"model:{model_id}"


def tag_term(tag: str) -> str:
    return f"tag:{tag}"


class AttentionTooLargeError(ValueError):
    """A compact attention blob over `MAX_ATTENTION_BYTES`."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every dialect.

    Postgres stores ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC and given ``tzinfo=UTC`` again on load. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Timestamps must be timezone-aware (UTC).")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(enum_class: type[StrEnum], name: str) -> Enum:
    # A VARCHAR with a named CHECK constraint: portable, and adding a value later is a
    # constraint change rather than an ALTER TYPE.
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobRowStatus(StrEnum):
    """One row of a row-based job: claimed by a worker, done, or failed with its error."""

    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("failed_logins >= 0", name="failed_logins_non_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # bcrypt hash; None until login (issue 4) sets one, and for users who never log in.
    password_hash: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"), default=Role.ANALYST, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the password last changed (revision 0007): sessions and login cookies from before
    # it are signed out.
    credentials_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class Visualization(Base):
    """One saved analysis: everything needed to re-render it without running the model.

    - ``params``: the request minus text and model id (mode, generation, top_k_next);
    - ``model_info``: `core.domain.analysis.ModelInfo` fields other than id and revision;
    - ``token_data``: ``{"text", "tokens", "token_ids", "offsets", "prompt_len",
      "next_tokens"}``, the analysed text and its ``seq_len`` tokens;
    - ``head_stats``: ``{stat name: [n_layers][n_heads] float}``;
    - ``compact_attention``: `core.attention.compact.encode` bytes, at most `MAX_ATTENTION_BYTES`;
    - ``timings``: ``{"load_s", "forward_s", "postprocess_s"}``.
    """

    __tablename__ = "visualizations"
    __table_args__ = (
        CheckConstraint("token_count >= 0", name="token_count_non_negative"),
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        CheckConstraint(f"length(compact_attention) <= {MAX_ATTENTION_BYTES}", name="compact_attention_size"),
        Index("ix_visualizations_owner_created", "owner_id", "created_at", "id"),
        Index("ix_visualizations_created", "created_at", "id"),
        Index("ix_visualizations_title", "title", "id"),
        Index("ix_visualizations_model_created", "model_id", "created_at"),
        Index("ix_visualizations_public_created", "is_public", "created_at"),
        Index("ix_visualizations_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    input_text: Mapped[str] = mapped_column(Text)
    generated_text: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    model_info: Mapped[dict[str, Any]] = mapped_column(JSONType)
    token_data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    token_count: Mapped[int] = mapped_column(Integer)
    head_stats: Mapped[dict[str, Any]] = mapped_column(JSONType)
    compact_attention: Mapped[bytes] = mapped_column(LargeBinary)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    annotation_text: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tags: Mapped[list[VisualizationTag]] = relationship(
        back_populates="visualization", cascade="all, delete-orphan", passive_deletes=True
    )
    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="visualization",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Annotation.id",
    )

    @validates("compact_attention")
    def _check_attention_size(self, _key: str, blob: bytes) -> bytes:
        if len(blob) > MAX_ATTENTION_BYTES:
            raise AttentionTooLargeError(
                f"The compact attention is {len(blob) / 2**20:.1f} MiB; the store accepts at most "
                f"{MAX_ATTENTION_BYTES / 2**20:.0f} MiB. Analyse a shorter text."
            )
        return blob

    @property
    def tag_names(self) -> list[str]:
        return sorted(tag.tag for tag in self.tags)

    def __repr__(self) -> str:
        return (
            f"Visualization(id={self.id!r}, owner_id={self.owner_id!r}, model_id={self.model_id!r}, "
            f"title={self.title!r}, deleted={self.deleted_at is not None})"
        )


class VisualizationTag(Base):
    """One tag on one visualization; tags are lower-case and unique per visualization."""

    __tablename__ = "visualization_tags"
    __table_args__ = (Index("ix_visualization_tags_tag", "tag", "visualization_id"),)

    visualization_id: Mapped[int] = mapped_column(
        ForeignKey("visualizations.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(MAX_TAG_CHARS), primary_key=True)

    visualization: Mapped[Visualization] = relationship(back_populates="tags")

    def __repr__(self) -> str:
        return f"VisualizationTag(visualization_id={self.visualization_id!r}, tag={self.tag!r})"


class Annotation(Base):
    """A note on a visualization, optionally pinned to a head and a token range.

    ``token_start`` and ``token_end`` are token indexes, both inclusive.
    """

    __tablename__ = "annotations"
    __table_args__ = (
        CheckConstraint("head IS NULL OR layer IS NOT NULL", name="head_needs_layer"),
        CheckConstraint(
            "token_start IS NULL OR token_end IS NULL OR token_start <= token_end",
            name="token_range_ordered",
        ),
        CheckConstraint(
            "(layer IS NULL OR layer >= 0) AND (head IS NULL OR head >= 0) "
            "AND (token_start IS NULL OR token_start >= 0)",
            name="positions_non_negative",
        ),
        Index("ix_annotations_visualization_created", "visualization_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visualization_id: Mapped[int] = mapped_column(ForeignKey("visualizations.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    layer: Mapped[int | None] = mapped_column(Integer)
    head: Mapped[int | None] = mapped_column(Integer)
    token_start: Mapped[int | None] = mapped_column(Integer)
    token_end: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    visualization: Mapped[Visualization] = relationship(back_populates="annotations")
    author: Mapped[User] = relationship(lazy="joined")

    @property
    def is_pinned(self) -> bool:
        return self.layer is not None or self.token_start is not None

    def __repr__(self) -> str:
        return (
            f"Annotation(id={self.id!r}, visualization_id={self.visualization_id!r}, "
            f"author_id={self.author_id!r}, layer={self.layer!r}, head={self.head!r})"
        )


class Comparison(Base):
    """Two models on the same text (the Compare screen); ``result`` is its encoded output."""

    __tablename__ = "comparisons"
    __table_args__ = (
        CheckConstraint(f"length(result) <= {MAX_ATTENTION_BYTES}", name="result_size"),
        Index("ix_comparisons_owner_created", "owner_id", "created_at", "id"),
        Index("ix_comparisons_created", "created_at", "id"),
        Index("ix_comparisons_public_created", "is_public", "created_at"),
        Index("ix_comparisons_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    model_a_id: Mapped[str] = mapped_column(String(200), index=True)
    model_a_revision: Mapped[str] = mapped_column(String(200))
    model_b_id: Mapped[str] = mapped_column(String(200), index=True)
    model_b_revision: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"Comparison(id={self.id!r}, owner_id={self.owner_id!r}, "
            f"models=({self.model_a_id!r}, {self.model_b_id!r}))"
        )


# Grants (revision 0003) and share links (0004) target exactly one of the three kinds.
_ONE_TARGET = (
    "(CASE WHEN visualization_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN comparison_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN atlas_id IS NULL THEN 0 ELSE 1 END) = 1"
)


class Grant(Base):
    """One user lets another read a record ("shared with me")."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint(_ONE_TARGET, name="one_target"),
        UniqueConstraint("visualization_id", "grantee_id"),
        UniqueConstraint("comparison_id", "grantee_id"),
        UniqueConstraint("atlas_id", "grantee_id"),
        Index("ix_grants_grantee", "grantee_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visualization_id: Mapped[int | None] = mapped_column(ForeignKey("visualizations.id", ondelete="CASCADE"))
    comparison_id: Mapped[int | None] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"))
    atlas_id: Mapped[int | None] = mapped_column(ForeignKey("atlases.id", ondelete="CASCADE"))
    grantee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"Grant(id={self.id!r}, visualization_id={self.visualization_id!r}, "
            f"comparison_id={self.comparison_id!r}, grantee_id={self.grantee_id!r})"
        )


class ShareLink(Base):
    """A link that shows one record without an account. Only the token's hash is stored."""

    __tablename__ = "share_links"
    __table_args__ = (CheckConstraint(_ONE_TARGET, name="one_target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visualization_id: Mapped[int | None] = mapped_column(
        ForeignKey("visualizations.id", ondelete="CASCADE"), index=True
    )
    comparison_id: Mapped[int | None] = mapped_column(
        ForeignKey("comparisons.id", ondelete="CASCADE"), index=True
    )
    atlas_id: Mapped[int | None] = mapped_column(ForeignKey("atlases.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"ShareLink(id={self.id!r}, visualization_id={self.visualization_id!r}, "
            f"comparison_id={self.comparison_id!r}, revoked={self.revoked_at is not None})"
        )


class AuditEvent(Base):
    """Who did what to which record, and when. ``actor_id`` is None for anonymous actions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return (
            f"AuditEvent(id={self.id!r}, actor_id={self.actor_id!r}, action={self.action!r}, "
            f"target={self.target_type!r}:{self.target_id!r})"
        )


class Job(Base):
    """A background task (recompute, compare, export); ``progress`` is 0..1."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        Index("ix_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.QUEUED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Row-based jobs (revision 0003): counts kept in step with ``job_rows``, the flag a
    # worker reads between rows, and the last sign of life from any worker on the job.
    rows_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, kind={self.kind!r}, status={self.status!r}, progress={self.progress!r})"


# --- Datasets, row-based jobs and head atlases (issue 7, revision 0003) ---------------------


class Dataset(Base):
    """An uploaded corpus (or a built-in one): its rows live in ``dataset_rows``.

    ``format`` is csv, jsonl, text or probe; ``text_column`` the CSV column or JSONL field
    read; ``report`` what the upload checks kept and skipped (`core.store.datasets.ParseReport`).
    Built-in datasets have no owner, a ``builtin_key`` and are public.
    """

    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint("row_count >= 0", name="row_count_non_negative"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        Index("ix_datasets_owner_created", "owner_id", "created_at"),
        Index("ix_datasets_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))
    text_column: Mapped[str | None] = mapped_column(String(200))
    source_filename: Mapped[str | None] = mapped_column(String(255))
    builtin_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    row_count: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"Dataset(id={self.id!r}, name={self.name!r}, rows={self.row_count!r}, "
            f"deleted={self.deleted_at is not None})"
        )


class DatasetRow(Base):
    """One item of a dataset: ``position`` orders rows from 0; ``line`` is where it was in the file."""

    __tablename__ = "dataset_rows"
    __table_args__ = (UniqueConstraint("dataset_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"DatasetRow(id={self.id!r}, dataset_id={self.dataset_id!r}, position={self.position!r})"


class TokenizationStat(Base):
    """How one model revision's tokenizer sees one dataset (`core.store.datasets.TokenizationStats`)."""

    __tablename__ = "tokenization_stats"
    __table_args__ = (UniqueConstraint("dataset_id", "model_id", "model_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(200))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"TokenizationStat(dataset_id={self.dataset_id!r}, model_id={self.model_id!r})"


class JobEvent(Base):
    """One entry of a job's timeline: queued, started on a worker, progress, finished..."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"JobEvent(id={self.id!r}, job_id={self.job_id!r}, kind={self.kind!r})"


class JobRow(Base):
    """A job's work on one dataset row, at most one per (job, row): the claim, then the result.

    ``scores`` is ``[n_stats, n_layers, n_heads]`` little-endian float32 (`core.attention.atlas`).
    """

    __tablename__ = "job_rows"
    __table_args__ = (
        UniqueConstraint("job_id", "row_id"),
        Index("ix_job_rows_job_status", "job_id", "status"),
        Index("ix_job_rows_row_id", "row_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    row_id: Mapped[int] = mapped_column(ForeignKey("dataset_rows.id", ondelete="CASCADE"))
    status: Mapped[JobRowStatus] = mapped_column(_enum(JobRowStatus, "job_row_status"))
    worker: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    token_count: Mapped[int | None] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    scores: Mapped[bytes | None] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"JobRow(job_id={self.job_id!r}, row_id={self.row_id!r}, status={self.status!r})"


class Atlas(Base):
    """A saved head atlas: per-head scores of one model over one dataset (`core.attention.atlas`).

    ``result`` is `core.attention.atlas.AtlasResult.to_json`. Private by default; shared like analyses
    (``is_public``, grants) and soft-deleted.
    """

    __tablename__ = "atlases"
    __table_args__ = (
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        Index("ix_atlases_owner_created", "owner_id", "created_at", "id"),
        Index("ix_atlases_created", "created_at", "id"),
        Index("ix_atlases_public_created", "is_public", "created_at"),
        Index("ix_atlases_deleted_at", "deleted_at"),
        Index("ix_atlases_dataset_id", "dataset_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(MAX_TITLE_CHARS))
    n_layers: Mapped[int] = mapped_column(Integer)
    n_heads: Mapped[int] = mapped_column(Integer)
    rows_used: Mapped[int] = mapped_column(Integer)
    rows_failed: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"Atlas(id={self.id!r}, owner_id={self.owner_id!r}, model_id={self.model_id!r}, "
            f"dataset_id={self.dataset_id!r}, deleted={self.deleted_at is not None})"
        )


# --- Request log, presets (issue 8, revision 0005) ------------------------------------------


class AnalysisRequestLog(Base):
    """One analysis request, whatever its outcome: the source of per-model analytics and drift.

    ``error_kind`` is None for a served request (model run or cache hit), else a short kind
    (``rate_limited``, ``validation``, ``model_load``, ``inference``, ...) with a shortened
    message. ``token_profile`` is `core.ops.drift.token_profile`: counts of the prompt's token ids
    hashed into a fixed number of buckets, ``{"buckets": n, "counts": {bucket: count}}``;
    it never holds the text, and the text cannot be rebuilt from it. ``tokens`` is what the
    model processed (prompt and generated tokens), ``input_chars`` the request text's length.
    """

    __tablename__ = "analysis_requests"
    __table_args__ = (
        CheckConstraint("latency_s >= 0 AND tokens >= 0 AND input_chars >= 0", name="amounts_non_negative"),
        CheckConstraint("error_message IS NULL OR error_kind IS NOT NULL", name="message_needs_kind"),
        Index("ix_analysis_requests_model_at", "model_id", "at"),
        Index("ix_analysis_requests_at", "at"),
        Index("ix_analysis_requests_user_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(32))
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    mode: Mapped[str] = mapped_column(String(16))
    latency_s: Mapped[float] = mapped_column(Float)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    input_chars: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    token_profile: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_kind: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return (
            f"AnalysisRequestLog(id={self.id!r}, model_id={self.model_id!r}, mode={self.mode!r}, "
            f"cache_hit={self.cache_hit!r}, error_kind={self.error_kind!r})"
        )


class Preset(Base):
    """Saved settings of the Generate or Compare screen (`core.store.presets.PresetSettings` JSON).

    Private to its owner unless ``is_public`` (then readable by every signed-in user);
    soft-deleted.
    """

    __tablename__ = "presets"
    __table_args__ = (
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        Index("ix_presets_owner_updated", "owner_id", "updated_at"),
        Index("ix_presets_public_updated", "is_public", "updated_at"),
        Index("ix_presets_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    screen: Mapped[PresetScreen] = mapped_column(_enum(PresetScreen, "preset_screen"))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"Preset(id={self.id!r}, owner_id={self.owner_id!r}, name={self.name!r}, "
            f"screen={self.screen!r}, deleted={self.deleted_at is not None})"
        )


class PresetFavourite(Base):
    """A user starred a preset (their own or a public one)."""

    __tablename__ = "preset_favourites"
    __table_args__ = (Index("ix_preset_favourites_preset_id", "preset_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    preset_id: Mapped[int] = mapped_column(ForeignKey("presets.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"PresetFavourite(user_id={self.user_id!r}, preset_id={self.preset_id!r})"


# --- The live model registry (issue 8, revision 0006) ----------------------------------------


class ModelOrigin(StrEnum):
    """Where a registry row came from: seeded from models.yaml, or added on the Models screen."""

    SEED = "seed"
    ADMIN = "admin"


class RegisteredModel(Base):
    """One model version the service may run (`core.models.registry.ModelSpec` plus admin state).

    ``model_id`` is what analyses store (`Visualization.model_id`); "<family>@<version>" for
    versions added after the family's first entry. ``source`` is the `ModelSource` as JSON.
    At most one row is the default (a partial unique index); the code keeps exactly one.
    """

    __tablename__ = "registered_models"
    __table_args__ = (
        CheckConstraint("kind IN ('causal', 'encoder')", name="kind_known"),
        CheckConstraint("max_input_tokens >= 8", name="max_input_tokens_positive"),
        CheckConstraint("NOT (is_default AND NOT enabled)", name="default_enabled"),
        Index("ix_registered_models_family", "family", "created_at"),
        Index(
            "uq_registered_models_one_default",
            "is_default",
            unique=True,
            sqlite_where=literal_column("is_default = 1"),
            postgresql_where=literal_column("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)
    family: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[dict[str, Any]] = mapped_column(JSONType)
    revision: Mapped[str] = mapped_column(String(200))
    licence: Mapped[str] = mapped_column(String(200))
    max_input_tokens: Mapped[int] = mapped_column(Integer)
    chat_template: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[ModelOrigin] = mapped_column(_enum(ModelOrigin, "model_origin"), default=ModelOrigin.ADMIN)
    # Position in models.yaml for seeded rows (pickers keep the file's order); admin rows follow.
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"RegisteredModel(id={self.id!r}, model_id={self.model_id!r}, revision={self.revision!r}, "
            f"enabled={self.enabled!r}, default={self.is_default!r})"
        )
