"""The custom search attributes operators filter cases by (docs/design.md, Contracts).

They hold no personal data: stages, service types, bands, dates, amounts and flags only.
"""

from temporalio.common import SearchAttributeKey

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
SERVICE_TYPE = SearchAttributeKey.for_keyword("ServiceType")
RISK_BAND = SearchAttributeKey.for_keyword("RiskBand")
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")
ARREARS_PENCE = SearchAttributeKey.for_int("ArrearsPence")
ASSIGNED_TEAM = SearchAttributeKey.for_keyword("AssignedTeam")
NEEDS_CASEWORKER = SearchAttributeKey.for_bool("NeedsCaseworker")
# The enforcement step a case is at (domain/enforcement.py step names), while enforcement is open.
ENFORCEMENT_STEP = SearchAttributeKey.for_keyword("EnforcementStep")

ALL_KEYS = (CASE_STAGE, SERVICE_TYPE, RISK_BAND, SLA_DUE_AT, ARREARS_PENCE, ASSIGNED_TEAM, NEEDS_CASEWORKER,
            ENFORCEMENT_STEP)

# Name -> type as the `temporal` CLI spells it for --search-attribute NAME=TYPE.
SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    "CaseStage": "Keyword",
    "ServiceType": "Keyword",
    "RiskBand": "Keyword",
    "SlaDueAt": "Datetime",
    "ArrearsPence": "Int",
    "AssignedTeam": "Keyword",
    "NeedsCaseworker": "Bool",
    "EnforcementStep": "Keyword",
}
