"""Owned records as every floor names them: the kinds of record a user owns, and the plain
rows that lists of them are made of.

`core.store.owned` drives one lifecycle (open, write, Trash, publish, audit) from a table of
these kinds; the screens receive these rows and the views of `core.store` and `core.service`,
never database objects. Nothing here imports the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RecordKind(StrEnum):
    """What a user owns: the value is also the ``kind`` of a share link's address."""

    ANALYSIS = "analysis"
    COMPARISON = "comparison"
    ATLAS = "atlas"
    DATASET = "dataset"
    PRESET = "preset"


# The kinds a share link (and a grant to one user) can open.
LINK_KINDS = frozenset({RecordKind.ANALYSIS, RecordKind.COMPARISON, RecordKind.ATLAS})


class Sort(StrEnum):
    """The order of the History list."""

    NEWEST = "newest"
    OLDEST = "oldest"
    TITLE = "title"


@dataclass(frozen=True)
class HistoryRow:
    """One line of a history list (no attention data is loaded for it)."""

    id: int
    title: str
    model_id: str
    owner_id: int
    is_public: bool
    created_at: datetime
    deleted_at: datetime | None
    token_count: int
    snippet: str
    tags: tuple[str, ...]
    annotation_count: int


@dataclass(frozen=True)
class SearchPage:
    rows: list[HistoryRow]
    total: int  # rows matching the filters over all pages, counted up to COUNT_CAP
    total_capped: bool  # True when more than COUNT_CAP rows match ("1,000+")
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class ComparisonRow:
    """One line of a list of comparisons (the result blob is not loaded for it)."""

    id: int
    title: str
    model_a_id: str
    model_b_id: str
    owner_id: int
    is_public: bool
    created_at: datetime


@dataclass(frozen=True)
class Access:
    """What the viewer may do with one opened record (the screen leaves out the rest)."""

    can_write: bool  # change, delete, restore
    can_share: bool  # the public switch and share links (a live record only)


@dataclass(frozen=True)
class Download:
    """A file made for one download button: its name, bytes and media type."""

    name: str
    data: bytes
    mime: str
