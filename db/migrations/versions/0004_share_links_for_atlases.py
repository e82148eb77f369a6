"""Share links can open a head atlas too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

``share_links`` gains ``atlas_id``; its one-target check now counts three targets, as
``grants`` does since 0003.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TWO_TARGETS = "(visualization_id IS NULL) <> (comparison_id IS NULL)"
THREE_TARGETS = (
    "(CASE WHEN visualization_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN comparison_id IS NULL THEN 0 ELSE 1 END"
    " + CASE WHEN atlas_id IS NULL THEN 0 ELSE 1 END) = 1"
)


def upgrade() -> None:
    with op.batch_alter_table("share_links") as batch:
        batch.add_column(sa.Column("atlas_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_share_links_atlas_id_atlases"), "atlases", ["atlas_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index(op.f("ix_share_links_atlas_id"), ["atlas_id"])
        batch.drop_constraint(op.f("ck_share_links_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_share_links_one_target"), THREE_TARGETS)


def downgrade() -> None:
    op.execute("DELETE FROM share_links WHERE atlas_id IS NOT NULL")
    with op.batch_alter_table("share_links") as batch:
        batch.drop_constraint(op.f("ck_share_links_one_target"), type_="check")
        batch.create_check_constraint(op.f("ck_share_links_one_target"), TWO_TARGETS)
        batch.drop_index(op.f("ix_share_links_atlas_id"))
        batch.drop_constraint(op.f("fk_share_links_atlas_id_atlases"), type_="foreignkey")
        batch.drop_column("atlas_id")
