"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 09:44:04.810262
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("dedup_key", sa.String(length=500), nullable=False),
        sa.Column("impact_started_at", sa.Double(), nullable=False),
        sa.Column("detected_at", sa.Double(), nullable=False),
        sa.Column("triggered_at", sa.Double(), nullable=False),
        sa.Column("acknowledged_at", sa.Double(), nullable=True),
        sa.Column("mitigated_at", sa.Double(), nullable=True),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("closed_at", sa.Double(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), server_default="1", nullable=False),
        sa.Column("next_escalation_at", sa.Double(), nullable=True),
        sa.Column("resolution_kind", sa.String(length=40), nullable=True),
        sa.Column("resolution_reason", sa.String(length=40), nullable=True),
        sa.Column("commander", sa.String(length=200), nullable=True),
        sa.Column("roles", sa.Text(), server_default="{}", nullable=False),
        sa.Column("related", sa.Text(), server_default="[]", nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.Column(
            "exclude_from_metrics", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
        ),
        sa.Column("signal_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_signal_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["incidents.id"], name=op.f("fk_incidents_merged_into_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incidents_service_triggered_at"),
            ["service", "triggered_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_incidents_status_triggered_at"), ["status", "triggered_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_incidents_triggered_at"), ["triggered_at"], unique=False
        )
        batch_op.create_index(
            "uq_incidents_open_dedup_key",
            ["dedup_key"],
            unique=True,
            sqlite_where=sa.text("is_open"),
            postgresql_where=sa.text("is_open"),
        )

    op.create_table(
        "issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("culprit", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("substatus", sa.String(length=20), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("reported_by", sa.String(length=200), server_default="medic", nullable=False),
        sa.Column("assigned_to", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("prevention", sa.Text(), nullable=True),
        sa.Column("related_files", sa.Text(), server_default="[]", nullable=False),
        sa.Column("related_issues", sa.Text(), server_default="[]", nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("response_target_s", sa.Double(), nullable=True),
        sa.Column("self_healing", sa.String(length=20), server_default="none", nullable=False),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("first_release", sa.String(length=200), nullable=True),
        sa.Column("last_release", sa.String(length=200), nullable=True),
        sa.Column("grouping_variant", sa.String(length=200), nullable=False),
        sa.Column("grouping_inputs", sa.Text(), nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["issues.id"], name=op.f("fk_issues_merged_into_issues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
    )
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issues_service_last_seen"), ["service", "last_seen"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_issues_status_last_seen"), ["status", "last_seen"], unique=False
        )

    op.create_table(
        "action_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("tracking_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_action_items_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_items")),
    )
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_action_items_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("received_at", sa.Double(), nullable=False),
        sa.Column("occurred_at", sa.Double(), nullable=False),
        sa.Column("detected_at", sa.Double(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("dedup_key", sa.String(length=500), nullable=True),
        sa.Column("probe", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("release", sa.String(length=200), nullable=True),
        sa.Column("environment", sa.String(length=200), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("exception", sa.Text(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_events_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_events_issue_id_issues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_events_source_external_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_incident_id_id"), ["incident_id", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_issue_id_id"), ["issue_id", "id"], unique=False)

    op.create_table(
        "incident_issues",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_issues_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_incident_issues_issue_id_issues")
        ),
        sa.PrimaryKeyConstraint("incident_id", "issue_id", name=op.f("pk_incident_issues")),
    )
    with op.batch_alter_table("incident_issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_issues_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "issue_hashes",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("grouping_version", sa.String(length=40), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_hashes_issue_id_issues")
        ),
        sa.PrimaryKeyConstraint("hash", "grouping_version", name=op.f("pk_issue_hashes")),
    )
    with op.batch_alter_table("issue_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_hashes_issue_id"), ["issue_id"], unique=False)

    op.create_table(
        "postmortems",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=40), server_default="draft", nullable=False),
        sa.Column("authors", sa.Text(), server_default="[]", nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.Column("root_causes", sa.Text(), nullable=True),
        sa.Column("trigger", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("detection", sa.Text(), nullable=True),
        sa.Column("went_well", sa.Text(), nullable=True),
        sa.Column("went_wrong", sa.Text(), nullable=True),
        sa.Column("got_lucky", sa.Text(), nullable=True),
        sa.Column("supporting_information", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_postmortems_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_postmortems")),
    )
    op.create_table(
        "recovery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_recovery_attempts_incident_id_incidents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_attempts")),
    )
    with op.batch_alter_table("recovery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recovery_attempts_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), server_default="{}", nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_timeline_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_timeline_issue_id_issues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline")),
    )
    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timeline_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_timeline_issue_id"), ["issue_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeline_issue_id"))
        batch_op.drop_index(batch_op.f("ix_timeline_incident_id"))

    op.drop_table("timeline")
    with op.batch_alter_table("recovery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_attempts_incident_id"))

    op.drop_table("recovery_attempts")
    op.drop_table("postmortems")
    with op.batch_alter_table("issue_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_hashes_issue_id"))

    op.drop_table("issue_hashes")
    with op.batch_alter_table("incident_issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_issues_issue_id"))

    op.drop_table("incident_issues")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_issue_id_id"))
        batch_op.drop_index(batch_op.f("ix_events_incident_id_id"))

    op.drop_table("events")
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_items_incident_id"))

    op.drop_table("action_items")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issues_status_last_seen"))
        batch_op.drop_index(batch_op.f("ix_issues_service_last_seen"))

    op.drop_table("issues")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_incidents_open_dedup_key",
            sqlite_where=sa.text("is_open"),
            postgresql_where=sa.text("is_open"),
        )
        batch_op.drop_index(batch_op.f("ix_incidents_triggered_at"))
        batch_op.drop_index(batch_op.f("ix_incidents_status_triggered_at"))
        batch_op.drop_index(batch_op.f("ix_incidents_service_triggered_at"))

    op.drop_table("incidents")
