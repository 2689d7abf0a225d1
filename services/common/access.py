"""Who may call what: one table from every RPC of every service to the roles that may call it and
what each role's subject may touch. The services' interceptor (services/common/auth.py) applies it
before any handler runs, so a refused call changes nothing; an RPC missing from the table is
refused to everyone (tests/security/test_access_matrix.py fails for it first).

An `Access` says, for one role on one RPC:
- `own_case`: the request's `case_id` must be a case where the token's subject is a party (parents);
- `binds`: request fields that name the caller (viewer_party_id, staff_id, actor, reviewer, ...): a
  value there that is not the token's subject is refused, so nobody acts or reads as someone else;
- `fills`: of those, the ones set to the subject when left empty, so the record names who acted;
- `requires`: field values this role may ask for and no other, e.g. a caseworker may set a
  safeguarding profile but only a senior caseworker may remove one (`active` False).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Access:
    own_case: bool = False
    binds: tuple[str, ...] = ()
    fills: tuple[str, ...] = ()
    requires: tuple[tuple[str, object], ...] = ()


ANY = Access()
STAFF = ("caseworker", "senior_caseworker")


def _roles(*roles: str, access: Access = ANY) -> dict[str, Access]:
    return {role: access for role in roles}


def _staff(access: Access = ANY) -> dict[str, Access]:
    return _roles(*STAFF, access=access)


_CASE = "/cms.case.v1.CaseService/"
_PAYMENTS = "/cms.payments.v1.PaymentsService/"
_NOTIFICATIONS = "/cms.notifications.v1.NotificationsService/"
_RISK = "/cms.risk.v1.RiskService/"

# A parent reading their own case: they are the viewer, never staff.
_PARENT_READ = Access(own_case=True, binds=("viewer_party_id", "staff_id"))
_STAFF_READ = Access(binds=("staff_id",))
_STAFF_ACT = {"actor": Access(binds=("actor",), fills=("actor",)),
              "reviewer": Access(binds=("reviewer",), fills=("reviewer",)),
              "assigned_by": Access(binds=("assigned_by",), fills=("assigned_by",)),
              "requested_by": Access(binds=("requested_by",), fills=("requested_by",))}

RULES: Mapping[str, Mapping[str, Access]] = {
    # --- the case API: channels (as `service`), parents, caseworkers, operations
    _CASE + "CreateApplication": {**_staff(), **_roles("service")},
    _CASE + "GetCase": {"parent": _PARENT_READ, **_staff(_STAFF_READ)},
    _CASE + "ListCases": {**_staff(), **_roles("operations")},
    _CASE + "GetTimeline": {"parent": Access(own_case=True), **_staff()},
    _CASE + "SignalCase": _staff(_STAFF_ACT["actor"]),
    _CASE + "ReportChange": {"parent": Access(own_case=True), **_staff(), **_roles("service")},
    _CASE + "ReviewChange": _staff(_STAFF_ACT["reviewer"]),
    _CASE + "GetSlaReport": {**_staff(), **_roles("operations")},
    _CASE + "ListAudit": _staff(),
    _CASE + "ListChanges": {**_staff(), **_roles("operations")},
    # --- payments: the worker runs the schedules; the bank alone says money came in or bounced
    _PAYMENTS + "GetBalance": {**_staff(), **_roles("operations", "service")},
    _PAYMENTS + "GetStatement": {**_staff(), **_roles("operations", "service")},
    _PAYMENTS + "RecordIncomingPayment": _roles("bank_feed"),
    _PAYMENTS + "CreateSchedule": _roles("service"),
    _PAYMENTS + "ReportDirectPayment": {**_staff(), **_roles("service")},
    _PAYMENTS + "PostCharge": {**_staff(), **_roles("service")},
    _PAYMENTS + "ChargePeriod": _roles("service"),
    _PAYMENTS + "CheckPeriod": _roles("service"),
    _PAYMENTS + "Disburse": _roles("service"),
    _PAYMENTS + "RecordBankReturn": _roles("bank_feed"),
    _PAYMENTS + "StopSchedule": {**_staff(), **_roles("service")},
    _PAYMENTS + "Reconcile": _roles("operations", "service"),
    _PAYMENTS + "ListSuspense": {**_staff(), **_roles("operations", "service")},
    _PAYMENTS + "AssignSuspensePayment": _staff(_STAFF_ACT["assigned_by"]),
    # --- notifications: the worker and the case API send; staff preview and read
    _NOTIFICATIONS + "Send": {**_staff(_STAFF_ACT["requested_by"]), **_roles("service")},
    _NOTIFICATIONS + "GetStatus": {**_staff(), **_roles("operations", "service")},
    _NOTIFICATIONS + "ListForCase": {**_staff(), **_roles("operations", "service")},
    _NOTIFICATIONS + "Preview": _staff(_STAFF_ACT["requested_by"]),
    _NOTIFICATIONS + "LetterPdf": _staff(_STAFF_ACT["requested_by"]),
    _NOTIFICATIONS + "SetParty": {**_staff(), **_roles("service")},
    _NOTIFICATIONS + "SetChildren": {**_staff(), **_roles("service")},
    _NOTIFICATIONS + "GetParty": {"parent": _PARENT_READ, **_staff(_STAFF_READ), **_roles("service")},
    # Setting a profile protects someone; removing one is a senior caseworker's decision.
    _NOTIFICATIONS + "SetSafeguardingProfile": {
        "caseworker": Access(binds=("set_by",), fills=("set_by",), requires=(("active", True),)),
        "senior_caseworker": Access(binds=("set_by",), fills=("set_by",)),
        "service": Access(requires=(("active", True),)),
    },
    _NOTIFICATIONS + "GetSafeguardingProfile": {**_staff(), **_roles("service")},
    # --- risk scoring: for the worker and for caseworkers looking at a case
    _RISK + "Score": {**_staff(), **_roles("service")},
    _RISK + "ScoreBatch": {**_staff(), **_roles("service")},
    _RISK + "ScoreCase": {**_staff(), **_roles("service")},
    _RISK + "GetModelInfo": {**_staff(), **_roles("operations", "service")},
}

# Open to every caller, with or without a token: load balancers and operators' tools use them.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                 "/grpc.reflection.v1.ServerReflection/")
