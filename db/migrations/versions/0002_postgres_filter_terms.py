"""Postgres: permission, model and tag filters inside the full-text index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

A frequent word matches a large share of all analyses; checking each match's visibility,
model or tags in the table costs one page read per row. Here each row carries
``filter_terms``: ``public`` or ``private``, ``owner:<id>``, ``model:<id>``, ``user:<id>``
for every live grant and ``tag:<tag>`` for every tag. One GIN index holds the search
vector and these terms together, so the index alone intersects "matches the words" with
"readable by this viewer, of this model, with these tags" before any row is read.
``grantee_terms`` and ``tag_terms`` are kept in step with ``grants`` and
``visualization_tags`` by triggers. SQLite is unchanged.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FILTER_TERMS = """
    ARRAY[
        CASE WHEN is_public THEN 'public' ELSE 'private' END,
        'owner:' || owner_id::text,
        'model:' || model_id::text
    ] || grantee_terms || tag_terms
"""

# (terms column, source table, the terms of one visualization from that table)
DERIVED = {
    "grantee_terms": (
        "grants",
        "SELECT 'user:' || grantee_id::text FROM grants "
        "WHERE visualization_id = {id} AND revoked_at IS NULL ORDER BY grantee_id",
    ),
    "tag_terms": (
        "visualization_tags",
        "SELECT 'tag:' || tag::text FROM visualization_tags WHERE visualization_id = {id} ORDER BY tag",
    ),
}

REFRESH = """
CREATE FUNCTION visualizations_refresh_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target integer;
BEGIN
    FOR target IN
        SELECT DISTINCT id FROM unnest(ARRAY[
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.visualization_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.visualization_id END
        ]) AS changed(id) WHERE id IS NOT NULL
    LOOP
        UPDATE visualizations SET {column} = ARRAY({terms}) WHERE id = target;
    END LOOP;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column, (table, terms) in DERIVED.items():
        op.execute(f"ALTER TABLE visualizations ADD COLUMN {column} text[] NOT NULL DEFAULT '{{}}'")
        op.execute(
            f"UPDATE visualizations SET {column} = ARRAY({terms.format(id='visualizations.id')}) "
            f"WHERE id IN (SELECT visualization_id FROM {table})"
        )
        op.execute(REFRESH.format(column=column, terms=terms.format(id="target")))
        op.execute(
            f"CREATE TRIGGER {table}_refresh_{column} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION visualizations_refresh_{column}()"
        )
    op.execute(f"ALTER TABLE visualizations ADD COLUMN filter_terms text[] GENERATED ALWAYS AS ({FILTER_TERMS}) STORED")
    op.execute("DROP INDEX ix_visualizations_search_vector")
    op.execute(
        "CREATE INDEX ix_visualizations_search ON visualizations "
        "USING gin (search_vector, filter_terms) WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_visualizations_search")
    op.execute("CREATE INDEX ix_visualizations_search_vector ON visualizations USING gin (search_vector)")
    op.execute("ALTER TABLE visualizations DROP COLUMN filter_terms")
    for column, (table, _) in DERIVED.items():
        op.execute(f"DROP TRIGGER {table}_refresh_{column} ON {table}")
        op.execute(f"DROP FUNCTION visualizations_refresh_{column}()")
        op.execute(f"ALTER TABLE visualizations DROP COLUMN {column}")
