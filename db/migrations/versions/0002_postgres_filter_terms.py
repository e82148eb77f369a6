"""Postgres: permission and model filters inside the full-text index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

A frequent word matches a large share of all analyses; checking each match's visibility
in the table costs one page read per row. Here each row carries ``filter_terms``
(``public``/``private``, ``owner:<id>``, ``model:<id>``, and ``user:<id>`` for every live
grant) and one GIN index holds the search vector and these terms together, so the index
alone intersects "matches the words" with "readable by this viewer" before any row is
read. ``grantee_terms`` is kept in step with ``grants`` by a trigger. SQLite is unchanged.
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
    ] || grantee_terms
"""

REFRESH_GRANTEES = """
CREATE FUNCTION visualizations_refresh_grantees() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target integer;
BEGIN
    FOR target IN
        SELECT DISTINCT id FROM unnest(ARRAY[
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.visualization_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.visualization_id END
        ]) AS changed(id) WHERE id IS NOT NULL
    LOOP
        UPDATE visualizations SET grantee_terms = ARRAY(
            SELECT 'user:' || grantee_id::text FROM grants
            WHERE visualization_id = target AND revoked_at IS NULL ORDER BY grantee_id
        ) WHERE id = target;
    END LOOP;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE visualizations ADD COLUMN grantee_terms text[] NOT NULL DEFAULT '{}'")
    op.execute(f"ALTER TABLE visualizations ADD COLUMN filter_terms text[] GENERATED ALWAYS AS ({FILTER_TERMS}) STORED")
    op.execute(REFRESH_GRANTEES)
    op.execute(
        "CREATE TRIGGER grants_refresh_grantees AFTER INSERT OR UPDATE OR DELETE ON grants "
        "FOR EACH ROW EXECUTE FUNCTION visualizations_refresh_grantees()"
    )
    op.execute(
        "UPDATE visualizations SET grantee_terms = ARRAY("
        "SELECT 'user:' || g.grantee_id::text FROM grants g "
        "WHERE g.visualization_id = visualizations.id AND g.revoked_at IS NULL ORDER BY g.grantee_id) "
        "WHERE id IN (SELECT visualization_id FROM grants)"
    )
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
    op.execute("DROP TRIGGER grants_refresh_grantees ON grants")
    op.execute("DROP FUNCTION visualizations_refresh_grantees()")
    op.execute("ALTER TABLE visualizations DROP COLUMN filter_terms")
    op.execute("ALTER TABLE visualizations DROP COLUMN grantee_terms")
