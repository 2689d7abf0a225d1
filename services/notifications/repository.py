"""PostgreSQL access for the notifications schema: parties, contact preferences, safeguarding
profiles, the transactional outbox and the audit log.

Every function takes a connection (or cursor owner) from the caller so that a notification can be
queued in the same transaction as its cause: `enqueue(conn, prepared)` inside the caller's
`async with conn.transaction():`. Table names are schema-qualified for the same reason.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from domain.notifications import ChildRecord, ContactPreferences
from domain.safeguarding import AuditEntry, SafeguardingProfile

_OUTBOX_COLUMNS = ("notification_id, idempotency_key, case_id, recipient_party_id, template, channel, "
                   "status, attempts, failure_reason, deliver_after, created_at, updated_at, language, "
                   "language_note")


@dataclass(frozen=True)
class CaseView:
    """What rendering needs to know about a case: its parties, their preferences, the profile."""

    case_id: str
    parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    preferences: dict[str, ContactPreferences] = field(default_factory=dict)
    profile: SafeguardingProfile = SafeguardingProfile()
    children: dict[str, ChildRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedNotification:
    """A rendered message ready for the outbox."""

    idempotency_key: str
    case_id: str
    recipient_party_id: str
    template: str
    channel: str
    variables: dict[str, Any]
    subject: str
    body: str
    deliver_after: datetime
    language: str = "en"
    language_note: str = ""
    # 'queued' for delivery, or 'for_caseworker' (a braille or audio letter a caseworker arranges).
    status: str = "queued"
    failure_reason: str = ""


@dataclass(frozen=True)
class OutboxRow:
    notification_id: str
    idempotency_key: str
    case_id: str
    recipient_party_id: str
    template: str
    channel: str
    status: str
    attempts: int
    failure_reason: str
    deliver_after: datetime
    created_at: datetime
    updated_at: datetime
    language: str = "en"
    language_note: str = ""


def _row(record: dict[str, Any]) -> OutboxRow:
    return OutboxRow(**{**record, "notification_id": str(record["notification_id"])})


# --- parties, preferences, profile -------------------------------------------------------------

async def upsert_party(conn: AsyncConnection, case_id: str, party_id: str, role: str,
                       details: dict[str, Any], preferences: ContactPreferences) -> None:
    await conn.execute(
        "INSERT INTO notifications.parties (case_id, party_id, role, details) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (case_id, party_id) DO UPDATE SET role = EXCLUDED.role, details = EXCLUDED.details, "
        "updated_at = now()",
        (case_id, party_id, role, Jsonb(details)),
    )
    await conn.execute(
        "INSERT INTO notifications.contact_preferences (case_id, party_id, channel, no_phone, safe_from, "
        "safe_until, language, accessible_format) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (case_id, party_id) DO UPDATE SET "
        "channel = EXCLUDED.channel, no_phone = EXCLUDED.no_phone, safe_from = EXCLUDED.safe_from, "
        "safe_until = EXCLUDED.safe_until, language = EXCLUDED.language, "
        "accessible_format = EXCLUDED.accessible_format, updated_at = now()",
        (case_id, party_id, preferences.channel, preferences.no_phone, preferences.safe_from,
         preferences.safe_until, preferences.language, preferences.accessible_format),
    )


async def set_children(conn: AsyncConnection, case_id: str, children: list[ChildRecord]) -> None:
    """Replaces the case's children (as letters name them)."""
    await conn.execute("DELETE FROM notifications.children WHERE case_id = %s", (case_id,))
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notifications.children (case_id, child_id, name, date_of_birth) VALUES (%s, %s, %s, %s)",
            [(case_id, child.child_id, child.name, child.date_of_birth) for child in children])


async def set_profile(conn: AsyncConnection, case_id: str, profile: SafeguardingProfile, set_by: str) -> None:
    await conn.execute(
        "INSERT INTO notifications.safeguarding_profiles (case_id, active, protected_party_ids, reason, "
        "safe_channel, no_phone, set_by) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (case_id) DO UPDATE "
        "SET active = EXCLUDED.active, protected_party_ids = EXCLUDED.protected_party_ids, "
        "reason = EXCLUDED.reason, safe_channel = EXCLUDED.safe_channel, no_phone = EXCLUDED.no_phone, "
        "set_by = EXCLUDED.set_by, updated_at = now()",
        (case_id, profile.active, list(profile.protected_party_ids), profile.reason, profile.safe_channel,
         profile.no_phone, set_by),
    )


async def get_profile(conn: AsyncConnection, case_id: str) -> tuple[SafeguardingProfile, str]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM notifications.safeguarding_profiles WHERE case_id = %s", (case_id,))
        row = await cur.fetchone()
    if row is None:
        return SafeguardingProfile(), ""
    return SafeguardingProfile(active=row["active"], protected_party_ids=tuple(row["protected_party_ids"]),
                               reason=row["reason"], safe_channel=row["safe_channel"],
                               no_phone=row["no_phone"]), row["set_by"]


async def load_case_view(conn: AsyncConnection, case_id: str) -> CaseView:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT p.party_id, p.role, p.details, c.channel, c.no_phone, c.safe_from, c.safe_until, "
            "c.language, c.accessible_format "
            "FROM notifications.parties p LEFT JOIN notifications.contact_preferences c "
            "USING (case_id, party_id) WHERE p.case_id = %s ORDER BY p.party_id", (case_id,))
        rows = await cur.fetchall()
        await cur.execute("SELECT child_id, name, date_of_birth FROM notifications.children WHERE case_id = %s "
                          "ORDER BY child_id", (case_id,))
        children = {r["child_id"]: ChildRecord(r["child_id"], r["name"], r["date_of_birth"])
                    for r in await cur.fetchall()}
    profile, _ = await get_profile(conn, case_id)
    return CaseView(
        case_id=case_id,
        parties={r["party_id"]: r["details"] for r in rows},
        roles={r["party_id"]: r["role"] for r in rows},
        preferences={r["party_id"]: preferences_of_row(r) for r in rows},
        profile=profile,
        children=children,
    )


def preferences_of_row(row: dict[str, Any]) -> ContactPreferences:
    return ContactPreferences(channel=row.get("channel") or "", no_phone=bool(row.get("no_phone")),
                              safe_from=row.get("safe_from"), safe_until=row.get("safe_until"),
                              language=row.get("language") or "",
                              accessible_format=row.get("accessible_format") or "")


# --- outbox -------------------------------------------------------------------------------------

async def enqueue(conn: AsyncConnection, prepared: PreparedNotification) -> tuple[OutboxRow, bool]:
    """Stores the notification unless its idempotency key is already known. Returns the row
    (the first one, for a repeated key) and whether it was created now."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO notifications.outbox (notification_id, idempotency_key, case_id, recipient_party_id, "
            "template, channel, variables, subject, body, deliver_after, next_attempt_at, language, language_note, "
            "status, failure_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_OUTBOX_COLUMNS}",
            (uuid.uuid4(), prepared.idempotency_key, prepared.case_id, prepared.recipient_party_id,
             prepared.template, prepared.channel, Jsonb(prepared.variables), prepared.subject, prepared.body,
             prepared.deliver_after, prepared.deliver_after, prepared.language, prepared.language_note,
             prepared.status, prepared.failure_reason),
        )
        created = await cur.fetchone()
        if created is not None:
            return _row(created), True
        await cur.execute(f"SELECT {_OUTBOX_COLUMNS} FROM notifications.outbox WHERE idempotency_key = %s",
                          (prepared.idempotency_key,))
        existing = await cur.fetchone()
    assert existing is not None  # the conflict means it exists and outbox rows are never deleted
    return _row(existing), False


async def find_by_key(conn: AsyncConnection, idempotency_key: str) -> OutboxRow | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_OUTBOX_COLUMNS} FROM notifications.outbox WHERE idempotency_key = %s",
                          (idempotency_key,))
        row = await cur.fetchone()
    return _row(row) if row else None


async def get_notification(conn: AsyncConnection, notification_id: str) -> OutboxRow | None:
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_OUTBOX_COLUMNS} FROM notifications.outbox WHERE notification_id = %s", (key,))
        row = await cur.fetchone()
    return _row(row) if row else None


async def list_for_case(conn: AsyncConnection, case_id: str) -> list[OutboxRow]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_OUTBOX_COLUMNS} FROM notifications.outbox WHERE case_id = %s "
                          "ORDER BY created_at, notification_id", (case_id,))
        return [_row(r) for r in await cur.fetchall()]


async def load_letter(conn: AsyncConnection, notification_id: str) -> dict[str, Any] | None:
    """A notification with what printing it needs: its text as sent and the recipient's details."""
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT o.case_id, o.recipient_party_id, o.channel, o.subject, o.body, o.language, o.created_at,"
            "       p.details, c.accessible_format"
            "  FROM notifications.outbox o"
            "  LEFT JOIN notifications.parties p ON p.case_id = o.case_id AND p.party_id = o.recipient_party_id"
            "  LEFT JOIN notifications.contact_preferences c"
            "         ON c.case_id = o.case_id AND c.party_id = o.recipient_party_id"
            " WHERE o.notification_id = %s", (key,))
        return await cur.fetchone()


# --- audit --------------------------------------------------------------------------------------

async def write_audit(conn: AsyncConnection, entries: list[AuditEntry]) -> None:
    if not entries:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notifications.audit_log (case_id, subject_party_id, actor, reason, fields_read) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(e.case_id, e.subject_party_id, e.actor, e.reason, list(e.fields_read)) for e in entries],
        )


def parse_hhmm(text: str, field_name: str) -> time | None:
    if not text:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{field_name} must be HH:MM, got {text!r}") from None


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


async def record_receipt(conn: AsyncConnection, notification_id: str, delivered: bool, reason: str = "") -> bool:
    """A provider's delivery receipt for a message it accepted ('sent'): 'delivered', or 'failed'
    with the reason (e.g. a letter returned). Repeated or late receipts change nothing; returns
    whether this receipt changed the status."""
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        return False
    result = await conn.execute(
        "UPDATE notifications.outbox SET status = %s, failure_reason = %s, updated_at = now() "
        "WHERE notification_id = %s AND status = 'sent'",
        ("delivered" if delivered else "failed", "" if delivered else reason, key),
    )
    return result.rowcount == 1
