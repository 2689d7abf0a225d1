"""The audit tables take inserts only: the database itself refuses to change or remove a row."""

from __future__ import annotations

import psycopg
import pytest

AUDITS = {
    "case_api.audit": ("INSERT INTO case_api.audit (case_id, staff_id, reason, action, fields) "
                       "VALUES ('case-audit-1', 'cw-1', 'phone call', 'GetCase', '{address}')"),
    "notifications.audit_log": ("INSERT INTO notifications.audit_log (case_id, subject_party_id, actor, reason, "
                                "fields_read) VALUES ('case-audit-1', 'party-1', 'cw-1', 'phone call', '{address}')"),
}


@pytest.mark.parametrize("table", sorted(AUDITS))
@pytest.mark.parametrize("change", ["UPDATE {table} SET reason = 'tidied'", "DELETE FROM {table}",
                                    "TRUNCATE {table}"])
def test_audit_rows_cannot_be_updated_deleted_or_truncated(database_url: str, table: str, change: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(AUDITS[table])
        before = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE reason = 'tidied') FROM {table}").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(change.format(table=table))
        after = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE reason = 'tidied') FROM {table}").fetchone()
    assert after == before
    assert before is not None and before[0] >= 1
