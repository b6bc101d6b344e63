"""incident key index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:30:27.569609
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incidents_dedup_key_id"), ["dedup_key", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_dedup_key_id"))
