"""Full-text search, filters, sorting and keyset pagination on both databases."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.access.permissions import Scope
from core.domain.identity import Role, Viewer
from core.domain.owned import RecordKind
from core.store import analyses as library
from core.store import owned
from core.store.analyses import HistoryQuery
from db import search
from db.models import Grant, Visualization
from db.search import Cursor, Sort, fts5_query
from tests.fixtures.databases import UserFactory
from tests.fixtures.records import save

HOSTILE = [
    '"',
    '""',
    "'",
    "' OR 1=1 --",
    "'; DROP TABLE visualizations; --",
    "NEAR(heads context)",
    "heads AND",
    "OR",
    "or or or",
    "-",
    "--",
    "*",
    "heads*",
    "^heads",
    "title:heads",
    "{title}: heads",
    "(((",
    ")",
    "\\",
    "%",
    "_",
    "😀",
    "\x00heads",
    "x" * 5000,
    "NOT",
    "AND OR NOT",
    "\u202eheads",
    "<script>alert(1)</script>",
    '"unbalanced phrase',
    "c'est naïve café",
    "heads:*",
    "!heads & !!context | ",
]


@pytest.fixture
def corpus(session: Session, make_user: UserFactory) -> dict[str, object]:
    alice, bob = make_user("alice"), make_user("bob")
    rows = {
        "previous": save(
            session,
            alice,
            "Attention heads track the previous token",
            title="Previous-token heads",
            tags="induction",
            day=0,
        ),
        "induction": save(
            session,
            alice,
            "Induction heads copy patterns from earlier context",
            title="Induction",
            tags="induction, copying",
            day=1,
        ),
        "geo": save(
            session,
            alice,
            "The capital of France is Paris",
            title="Geography probe",
            model_id="gemma",
            tags="geo",
            day=2,
        ),
        "long": save(
            session,
            alice,
            "Running models on long documents",
            title="Long inputs",
            model_id="minilm",
            day=3,
            generated=" and a walrus appeared",
        ),
        "odd": save(session, alice, 'Emoji 😀 test with "quotes" and 1=1', title="Odd characters", day=4),
        "bob_public": save(
            session, bob, "Bob's public note about zebras", title="Zebra public", day=5, public=True
        ),
        "bob_secret": save(session, bob, "Bob's secret zebras", title="Zebra secret", day=6),
    }
    return {"alice": alice, "bob": bob, "rows": rows}


def titles(session: Session, viewer: Viewer, **query: object) -> set[str]:
    page = library.search_history(session=session, viewer=viewer, query=HistoryQuery(page_size=100, **query))
    assert page.total == len(page.rows)
    return {row.title for row in page.rows}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("induction", {"Induction"}),
        ("heads", {"Previous-token heads", "Induction"}),
        ("head", {"Previous-token heads", "Induction"}),
        ("run", {"Long inputs"}),
        ("geography", {"Geography probe"}),
        ('"capital of France"', {"Geography probe"}),
        ('"France capital"', set()),
        ("paris or zebras", {"Geography probe", "Zebra public"}),
        ("heads -induction", {"Previous-token heads"}),
        ("walrus", {"Long inputs"}),
        ("zebra", {"Zebra public"}),
        ("quotes", {"Odd characters"}),
        ("PARIS", {"Geography probe"}),
        ("nothing-like-this", set()),
    ],
)
def test_search_finds_exactly(session: Session, corpus: dict, text: str, expected: set[str]) -> None:
    """Words, stems, phrases, or, exclusion, title and generated text, case-insensitively."""
    assert titles(session, corpus["alice"], text=text) == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_strings_never_error(session: Session, corpus: dict, text: str) -> None:
    """Quotes, operators, SQL fragments and emoji search literally and never fail."""
    found = titles(session, corpus["alice"], text=text)
    assert "Zebra secret" not in found
    assert session.scalar(select(func.count()).select_from(Visualization)) == 7


def test_sql_fragment_searches_literally(session: Session, corpus: dict) -> None:
    """An injection attempt is just words: it finds the one text containing "1=1", not everything."""
    assert titles(session, corpus["alice"], text="' OR 1=1 --") == {"Odd characters"}
    assert titles(session, corpus["alice"], text="🦓 zebras") == {"Zebra public"}


def test_annotations_are_searchable(session: Session, corpus: dict) -> None:
    """Adding, editing and deleting a note updates what the search finds."""
    alice, record = corpus["alice"], corpus["rows"]["long"]
    note = library.annotate(
        session=session, viewer=alice, visualization_id=record.id, values={"body": "giraffe"}
    )
    assert titles(session, alice, text="giraffe") == {"Long inputs"}
    library.edit_annotation(session=session, viewer=alice, annotation_id=note.id, values={"body": "okapi"})
    assert titles(session, alice, text="giraffe") == set()
    assert titles(session, alice, text="okapi") == {"Long inputs"}
    library.delete_annotation(session=session, viewer=alice, annotation_id=note.id)
    assert titles(session, alice, text="okapi") == set()


def test_filters(session: Session, corpus: dict) -> None:
    """Model, tags (all of them), inclusive date range, and scope narrow the list."""
    alice, bob = corpus["alice"], corpus["bob"]
    assert titles(session, alice, model_ids=("gemma", "minilm")) == {"Geography probe", "Long inputs"}
    assert titles(session, alice, tags=("induction",)) == {"Previous-token heads", "Induction"}
    assert titles(session, alice, tags=("Induction", "copying")) == {"Induction"}
    assert titles(session, alice, date_from=date(2026, 1, 2), date_to=date(2026, 1, 3)) == {
        "Induction",
        "Geography probe",
    }
    assert titles(session, alice, text="heads", date_from=date(2026, 1, 2)) == {"Induction"}
    assert titles(session, alice, scope=Scope.PUBLIC) == {"Zebra public"}
    assert len(titles(session, alice, scope=Scope.MINE)) == 5
    assert titles(session, alice, scope=Scope.SHARED) == set()
    session.add(
        Grant(
            visualization_id=corpus["rows"]["bob_secret"].id, grantee_id=alice.user_id, granted_by=bob.user_id
        )
    )
    session.flush()
    assert titles(session, alice, scope=Scope.SHARED) == {"Zebra secret"}
    assert "Zebra secret" in titles(session, alice, text="zebras")


def _all_ids(session: Session, viewer: Viewer, sort: Sort, page_size: int) -> tuple[list[int], list[int]]:
    """Ids page by page, and the totals each page reported."""
    ids, totals, cursor = [], [], None
    while True:
        page = library.search_history(
            session=session, viewer=viewer, query=HistoryQuery(sort=sort, page_size=page_size), cursor=cursor
        )
        ids += [row.id for row in page.rows]
        totals.append(page.total)
        cursor = page.next_cursor
        if cursor is None:
            return ids, totals


@pytest.mark.parametrize("sort", list(Sort))
def test_keyset_pages_cover_everything_once(session: Session, make_user: UserFactory, sort: Sort) -> None:
    """Pages in every sort order list each row exactly once, in order, with a steady total."""
    owner = make_user("paul")
    made = [save(session, owner, f"text number {i}", title=f"title {i % 4}", day=i % 3) for i in range(23)]
    ids, totals = _all_ids(session, owner, sort, page_size=5)
    assert len(ids) == 23 and set(ids) == {r.id for r in made}
    assert totals == [23] * 5
    by_id = {r.id: r for r in made}
    keys = [(by_id[i].title, i) if sort is Sort.TITLE else (by_id[i].created_at, i) for i in ids]
    assert keys == sorted(keys, reverse=sort is Sort.NEWEST)


def test_pages_stay_stable_while_rows_arrive(session: Session, make_user: UserFactory) -> None:
    """Rows saved after page 1 was shown neither shift page 2 nor appear twice."""
    owner = make_user("quinn")
    for i in range(12):
        save(session, owner, f"row {i}", day=i)
    query = HistoryQuery(page_size=5)
    first = library.search_history(session=session, viewer=owner, query=query)
    expected_second = library.search_history(
        session=session, viewer=owner, query=query, cursor=first.next_cursor
    )
    for i in range(4):
        save(session, owner, f"late row {i}", day=100 + i)
    second = library.search_history(session=session, viewer=owner, query=query, cursor=first.next_cursor)
    assert [r.id for r in second.rows] == [r.id for r in expected_second.rows]
    assert second.total == 16
    seen = [r.id for r in first.rows] + [r.id for r in second.rows]
    assert len(seen) == len(set(seen))


def test_bad_cursors_are_refused(session: Session, make_user: UserFactory) -> None:
    """A tampered cursor or one from another sort order gets a clear ValueError."""
    owner = make_user("rita")
    for i in range(3):
        save(session, owner, f"row {i}", day=i)
    page = library.search_history(session=session, viewer=owner, query=HistoryQuery(page_size=1))
    assert page.next_cursor is not None
    with pytest.raises(ValueError, match="does not fit"):
        library.search_history(
            session=session,
            viewer=owner,
            query=HistoryQuery(page_size=1, sort=Sort.TITLE),
            cursor=page.next_cursor,
        )
    for bad in ["not base64!", "e30=", Cursor(Sort.TITLE, "x", 1).encode()[:-3]]:
        with pytest.raises(ValueError, match="start again"):
            library.search_history(session=session, viewer=owner, query=HistoryQuery(), cursor=bad)


def test_trash_lists_only_my_deleted(session: Session, corpus: dict, make_user: UserFactory) -> None:
    """The Trash shows the viewer's soft-deleted rows; search and filters apply there too."""
    alice, bob, rows = corpus["alice"], corpus["bob"], corpus["rows"]
    owned.delete(session=session, viewer=alice, kind=RecordKind.ANALYSIS, record_id=rows["geo"].id)
    owned.delete(session=session, viewer=bob, kind=RecordKind.ANALYSIS, record_id=rows["bob_public"].id)
    assert titles(session, alice, trash=True) == {"Geography probe"}
    assert titles(session, alice, trash=True, text="paris") == {"Geography probe"}
    assert "Geography probe" not in titles(session, alice)
    admin = make_user("root", Role.ADMIN)
    assert titles(session, admin, trash=True) == {"Geography probe", "Zebra public"}


def test_fts5_query_quotes_every_term() -> None:
    """User text becomes quoted FTS5 strings joined by the operators we chose."""
    assert fts5_query('big "red dog" or cat -mouse') == ('("big" AND "red dog") OR ("cat" NOT "mouse")', None)
    assert fts5_query('say "hi"') == ('("say" AND "hi")', None)
    assert fts5_query('a"b') == ('("a""b")', None)
    assert fts5_query("-only -minus") == (None, '"only" OR "minus"')
    assert fts5_query("😀 ' --") == (None, None)


def test_counts_stop_at_the_cap_but_pages_go_on(
    session: Session, make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COUNT_CAP matches the total reads "cap+" and paging still reaches every row."""
    monkeypatch.setattr(search, "COUNT_CAP", 5)
    owner = make_user("sam")
    for i in range(8):
        save(session, owner, f"capped row {i}", day=i)
    page = library.search_history(session=session, viewer=owner, query=HistoryQuery(page_size=3))
    assert (page.total, page.total_capped) == (5, True)
    ids, _ = _all_ids(session, owner, Sort.OLDEST, page_size=3)
    assert len(ids) == 8
    narrow = library.search_history(
        session=session, viewer=owner, query=HistoryQuery(text="row", page_size=3)
    )
    assert narrow.total_capped
    exact = library.search_history(
        session=session, viewer=owner, query=HistoryQuery(date_to=date(2026, 1, 3), page_size=3)
    )
    assert (exact.total, exact.total_capped) == (3, False)
