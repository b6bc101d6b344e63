"""The store's schema. Times are UTC epoch seconds (double precision).

Epoch seconds keep KPI arithmetic in plain SQL identical on SQLite and
PostgreSQL and cost one float per column; the query layer turns them back into
timezone-aware datetimes. Alembic migrations under `migrations/` create and
evolve these tables; this module is what the code reads and writes.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "action_items",
    "events",
    "incident_issues",
    "incidents",
    "issue_hashes",
    "issues",
    "metadata",
    "notifications",
    "postmortems",
    "recovery_attempts",
    "timeline",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("service", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("culprit", Text, nullable=False, server_default=""),
    Column("kind", String(40), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("substatus", String(20), nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("times_seen", Integer, nullable=False),
    Column("reported_by", String(200), nullable=False, server_default="medic"),
    Column("assigned_to", String(200)),
    Column("description", Text),
    Column("impact", Text),
    Column("root_cause", Text),
    Column("resolution", Text),
    Column("prevention", Text),
    Column("related_files", Text, nullable=False, server_default="[]"),
    Column("related_issues", Text, nullable=False, server_default="[]"),
    Column("category", String(100)),
    Column("owner", String(200)),
    Column("response_target_s", Double),
    Column("self_healing", String(20), nullable=False, server_default="none"),
    Column("resolved_at", Double),
    Column("first_release", String(200)),
    Column("last_release", String(200)),
    Column("grouping_variant", String(200), nullable=False),
    Column("grouping_inputs", Text, nullable=False),
    Column("merged_into", Integer, ForeignKey("issues.id")),
    Index(None, "service", "last_seen"),
    Index(None, "status", "last_seen"),
)

issue_hashes = Table(
    "issue_hashes",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("grouping_version", String(40), primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=False, index=True),
    Column("variant", String(200), nullable=False),
    Column("inputs", Text, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("summary", Text),
    Column("service", String(200), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("dedup_key", String(500), nullable=False),
    Column("impact_started_at", Double, nullable=False),
    Column("detected_at", Double, nullable=False),
    Column("triggered_at", Double, nullable=False),
    Column("acknowledged_at", Double),
    Column("mitigated_at", Double),
    Column("resolved_at", Double),
    Column("closed_at", Double),
    Column("escalation_level", Integer, nullable=False, server_default="1"),
    Column("next_escalation_at", Double),
    Column("escalation_loop", Integer, nullable=False, server_default="0"),
    Column("resolution_kind", String(40)),
    Column("resolution_reason", String(40)),
    Column("commander", String(200)),
    Column("roles", Text, nullable=False, server_default="{}"),
    Column("related", Text, nullable=False, server_default="[]"),
    Column("merged_into", Integer, ForeignKey("incidents.id")),
    Column("exclude_from_metrics", Boolean, nullable=False, server_default=text("false")),
    Column("signal_count", Integer, nullable=False, server_default="0"),
    Column("last_signal_at", Double),
    Index(None, "triggered_at"),
    Index(None, "service", "triggered_at"),
    Index(None, "status", "triggered_at"),
    # The previous incident of a key (to link a new one to it) without a table scan.
    Index(None, "dedup_key", "id"),
    # One open incident per dedup key: the database, not only the code, says so.
    Index(
        "uq_incidents_open_dedup_key",
        "dedup_key",
        unique=True,
        sqlite_where=text("is_open"),
        postgresql_where=text("is_open"),
    ),
)

incident_issues = Table(
    "incident_issues",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), primary_key=True, index=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(200), nullable=False),
    Column("external_id", String(200)),
    Column("received_at", Double, nullable=False),
    Column("occurred_at", Double, nullable=False),
    Column("detected_at", Double, nullable=False),
    Column("service", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("title", Text),
    Column("fingerprint", String(64), nullable=False),
    Column("dedup_key", String(500)),
    Column("probe", String(200)),
    Column("reason", String(500)),
    Column("release", String(200)),
    Column("environment", String(200)),
    Column("tags", Text),
    Column("exception", Text),
    # Acknowledge/mitigate/resolve signals report on an incident, not a failure: no issue.
    # No foreign keys on these two: events is the one high-volume table, written only by
    # the recorder in the transaction that creates the issue and incident it names, and
    # PostgreSQL's per-row checks cost half of a batch's server time (SQLite never
    # enforced them in medic's store). The tests hold every link, on both databases.
    Column("issue_id", Integer),
    Column("incident_id", Integer),
    UniqueConstraint("source", "external_id"),
    Index(None, "issue_id", "id"),
    Index(None, "incident_id", "id"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), index=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), index=True),
    Column("at", Double, nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),
    Column("event_id", Integer),
)

recovery_attempts = Table(
    "recovery_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("action", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Double, nullable=False),
    Column("ended_at", Double),
    Column("outcome", String(20)),
    Column("error", Text),
    Column("evidence", Text, nullable=False, server_default="{}"),
)

postmortems = Table(
    "postmortems",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("status", String(40), nullable=False, server_default="draft"),
    Column("authors", Text, nullable=False, server_default="[]"),
    Column("summary", Text),
    Column("impact", Text),
    Column("root_causes", Text),
    Column("trigger", Text),
    Column("resolution", Text),
    Column("detection", Text),
    Column("went_well", Text),
    Column("went_wrong", Text),
    Column("got_lucky", Text),
    Column("supporting_information", Text),
    Column("updated_at", Double, nullable=False),
)

action_items = Table(
    "action_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("type", String(20), nullable=False),
    Column("owner", String(200)),
    Column("tracking_url", Text),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("created_at", Double, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("level", String(20), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("target", String(500), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("sent_at", Double, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("error", Text),
)
