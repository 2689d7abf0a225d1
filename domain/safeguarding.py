"""Safeguarding: what one parent may learn about the other (docs/design.md, Security and safeguarding, docs/rules.md).

One mechanism for every outbound path (letters, SMS, email, API responses): whatever is about
to leave the system for a viewer passes through `redact_for_viewer`. Templates and handlers do
not decide field by field; this module does.

What one party sees of the other's record is an allow-list: who they are in the case (party id
and role) and, unless the case is safeguarded, their name. Every other key is withheld, whether
or not anybody thought to list it (`mobile`, `address_line_1`, `post_code`, ...). Nothing in the
statutory process needs one parent's contact details to reach the other; a safeguarding profile
adds the audit, the stricter channel rules and withholds the name too.

Protected fields (`PROTECTED_FIELDS`) still name what reveals where a person lives or can be
found: template variables that belong to nobody in particular are redacted by that list, and the
audit says which of them a reader saw.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, TypeVar

PROTECTED_FIELDS: frozenset[str] = frozenset({
    "address", "postcode", "phone", "email", "employer", "employer_address",
    "bank_sort_code", "bank_account_number", "location", "town",
})
REDACTED = "[withheld]"

# The other party's record as a party sees it: only these keys; any other non-empty value withheld.
OTHER_PARTY_FIELDS: frozenset[str] = frozenset({"party_id", "role", "full_name"})
OTHER_PARTY_FIELDS_SAFEGUARDED: frozenset[str] = frozenset({"party_id", "role"})

T = TypeVar("T")


@dataclass(frozen=True)
class SafeguardingProfile:
    """Set at application (domestic abuse question answered yes) or by a caseworker."""

    active: bool = False
    # The party the profile protects (usually the one who answered yes); empty = both parties.
    protected_party_ids: tuple[str, ...] = ()
    reason: str = ""
    # Safe contact preferences for the protected party.
    safe_channel: str = ""
    no_phone: bool = False

    def protects(self, party_id: str) -> bool:
        return self.active and (not self.protected_party_ids or party_id in self.protected_party_ids)


@dataclass(frozen=True)
class Viewer:
    """Who an outbound record is for: a party of the case, or staff with a reason."""

    party_id: str = ""
    staff_id: str = ""
    reason: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.staff_id)


def may_see_protected(owner_party_id: str, viewer: Viewer) -> bool:
    """A party always sees their own details; staff see them (and the read is audited by the caller);
    nobody else does."""
    return viewer.is_staff or (bool(viewer.party_id) and viewer.party_id == owner_party_id)


def redact_for_viewer(record: T, owner_party_id: str, viewer: Viewer, safeguarded: bool = False) -> T:
    """Returns `record` as `viewer` may see it; never mutates its input.

    A party's record (`owner_party_id` given; a dict or dataclass) keeps, for anyone but its owner
    and staff, only the allow-listed keys (`OTHER_PARTY_FIELDS`, or `OTHER_PARTY_FIELDS_SAFEGUARDED`
    on a safeguarded case); every other value is withheld. A record that belongs to nobody in
    particular (`owner_party_id` "": template variables) has its protected fields withheld,
    however deeply nested."""
    if may_see_protected(owner_party_id, viewer):
        return record
    if owner_party_id:
        return _keep_only(record, OTHER_PARTY_FIELDS_SAFEGUARDED if safeguarded else OTHER_PARTY_FIELDS)
    return _redact(record)


def _withheld(item: Any) -> Any:
    if item in ("", None):
        return item
    return REDACTED if isinstance(item, str) else type(item)()


def _keep_only(record: Any, allowed: frozenset[str]) -> Any:
    """`record` with only the `allowed` keys' values, at every depth; nested records are walked."""
    if isinstance(record, dict):
        return {key: (_keep_only(item, allowed) if isinstance(item, (dict, list))
                      else item if key in allowed else _withheld(item)) for key, item in record.items()}
    if isinstance(record, list):
        return [_keep_only(item, allowed) for item in record]
    if is_dataclass(record) and not isinstance(record, type):
        changes = {}
        for f in fields(record):
            item = getattr(record, f.name)
            if isinstance(item, (dict, list)) or (is_dataclass(item) and not isinstance(item, type)):
                changes[f.name] = _keep_only(item, allowed)
            elif f.name not in allowed and item not in ("", None):
                changes[f.name] = _withheld(item)
        return replace(record, **changes) if changes else record
    return REDACTED if record not in ("", None) else record


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: (REDACTED if key in PROTECTED_FIELDS and item not in ("", None) else _redact(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if f.name in PROTECTED_FIELDS and item not in ("", None):
                changes[f.name] = REDACTED
            elif isinstance(item, (dict, list)) or is_dataclass(item):
                changes[f.name] = _redact(item)
        return replace(value, **changes) if changes else value
    return value


def protected_values(record: Any) -> set[str]:
    """Every non-empty protected value inside `record`: what tests search outbound text for."""
    found: set[str] = set()
    if isinstance(record, dict):
        for key, item in record.items():
            if key in PROTECTED_FIELDS and isinstance(item, str) and item:
                found.add(item)
            else:
                found |= protected_values(item)
    elif isinstance(record, list):
        for item in record:
            found |= protected_values(item)
    elif is_dataclass(record) and not isinstance(record, type):
        for f in fields(record):
            item = getattr(record, f.name)
            if f.name in PROTECTED_FIELDS and isinstance(item, str) and item:
                found.add(item)
            else:
                found |= protected_values(item)
    return found


def protected_fields_present(record: Any) -> tuple[str, ...]:
    """Names of the protected fields that hold a value in `record` (top level): what an audit
    entry says was read, without repeating the values themselves."""
    if isinstance(record, dict):
        names = [key for key, item in record.items() if key in PROTECTED_FIELDS and item not in ("", None)]
    elif is_dataclass(record) and not isinstance(record, type):
        names = [f.name for f in fields(record) if f.name in PROTECTED_FIELDS
                 and getattr(record, f.name) not in ("", None)]
    else:
        names = []
    return tuple(sorted(names))


@dataclass(frozen=True)
class AuditEntry:
    """One read of protected data: whose, by whom, why. Stored by the service that read it."""

    case_id: str
    subject_party_id: str
    actor: str          # "staff:<id>", "party:<id>" or "system:<component>"
    reason: str
    fields_read: tuple[str, ...]


def audit_entry_for_read(case_id: str, subject_party_id: str, viewer: Viewer, reason: str,
                         record: Any, system_actor: str = "") -> AuditEntry | None:
    """The audit entry for `viewer` (or a system component) reading `record`'s protected fields
    unredacted; None when nothing protected is read. A staff read must give a reason."""
    read = protected_fields_present(record)
    if not read or (not may_see_protected(subject_party_id, viewer) and not system_actor):
        return None
    if viewer.is_staff and not (reason or viewer.reason):
        raise ValueError("a caseworker reading protected details must give a reason")
    actor = (f"staff:{viewer.staff_id}" if viewer.is_staff else
             f"system:{system_actor}" if system_actor else f"party:{viewer.party_id}")
    return AuditEntry(case_id, subject_party_id, actor, reason or viewer.reason, read)


def collect_and_pay_allowed(profile: SafeguardingProfile, requested_by_party_id: str,
                            other_party_consents: bool) -> bool:
    """Whether a parent's request for Collect & Pay can go ahead without the other parent
    agreeing: yes on safeguarding grounds, when the requester is a party the profile protects
    (Child Support (Enforcement) Act 2023; docs/rules.md); otherwise only with consent. The
    other grounds of docs/rules.md section 8 (payer not shown they will pay) are the case workflow's to add."""
    return other_party_consents or profile.protects(requested_by_party_id)
