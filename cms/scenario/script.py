"""The scenario file: what happens to one case and when (docs/design.md, The `cms scenario` command).

```json
{"//": ["a comment: the rule, its source, the expected result worked by hand"],
 "application": {"...": "CreateApplicationRequest as proto JSON"},
 "hmrc": {"2024-25": 3120000},
 "events": [{"on": "2025-06-01", "report_change": {"kind": "..."}},
            {"on": "2025-07-01", "hmrc_income": {"annual_pence": 3500000, "tax_year": "2024-25"}}],
 "until": "2027-03-01"}
```

`read_scenario` checks everything that can be checked without running the case and raises
`ScenarioError(path, message)` for the first problem; the requests themselves are parsed into the
case API's and payments' own protobuf messages, so a misspelt field is refused the way the API
refuses it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from cms_proto.case.v1 import case_pb2
from cms_proto.payments.v1 import payments_pb2
from services.case_api.service import ACTIONS, validate_application
from services.common.errors import FieldViolations

COMMENT_KEY = "//"
_TOP_LEVEL = {COMMENT_KEY, "application", "hmrc", "events", "until"}
_TAX_YEAR = re.compile(r"^(\d{4})-(\d{2})$")
# The scenario's default when the application leaves it out: the idempotency key only names
# the case, and a scenario is one case.
DEFAULT_IDEMPOTENCY_KEY = "scenario"


class ScenarioError(Exception):
    """A scenario that cannot be played: `path` names the bad part (`events[2].on`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class CaseworkerAction:
    """A caseworker's action on the case (`SignalCase`): an update of the case workflow."""

    action: str
    payload: dict[str, Any]
    actor: str


@dataclass(frozen=True)
class IncomingPayment:
    """Money from the paying parent reaching the service (Collect & Pay)."""

    amount_pence: int
    method: str = "METHOD_DIRECT_DEBIT"


@dataclass(frozen=True)
class HmrcFigure:
    """A figure HMRC sends for the paying parent on a day of its own (the HMRC feed), not in answer
    to the case's request; with `tax_year`, HMRC also answers later requests with it."""

    annual_pence: int
    tax_year: str = ""


@dataclass(frozen=True)
class Event:
    """One thing that happens on case day `on`; `request` is the message of its `kind`."""

    on: date
    kind: str      # one of EVENT_KINDS
    request: Any
    path: str      # where it sits in the file, for messages about it


@dataclass(frozen=True)
class Scenario:
    application: case_pb2.CreateApplicationRequest
    application_date: date
    hmrc: dict[str, int]                 # tax year "2024-25" -> annual income in pence
    events: list[Event] = field(default_factory=list)   # in date order (stable for one day)
    until: date = date.min


def read_scenario(text: str) -> Scenario:
    """The scenario in `text` (one JSON object), checked; ScenarioError on the first problem."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ScenarioError("(input)", f"not valid JSON: {error}") from None
    return scenario_from(data)


def scenario_from(data: Any) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("(input)", "a scenario is one JSON object")
    for key in data:
        if key not in _TOP_LEVEL:
            raise ScenarioError(key, f"unknown key (expected one of {', '.join(sorted(_TOP_LEVEL - {COMMENT_KEY}))})")
    _check_comment(data.get(COMMENT_KEY))
    if "application" not in data:
        raise ScenarioError("application", "required")
    if "until" not in data:
        raise ScenarioError("until", "required")
    application, applied = _application(data["application"])
    until = iso_date(data["until"], "until")
    if until < applied:
        raise ScenarioError("until", f"is before the application date {applied.isoformat()}")
    events = _events(data.get("events", []), applied, until)
    return Scenario(application=application, application_date=applied, hmrc=_hmrc(data.get("hmrc", {})),
                    events=sorted(events, key=lambda event: event.on), until=until)


def iso_date(value: Any, path: str) -> date:
    if not isinstance(value, str):
        raise ScenarioError(path, "must be an ISO date (YYYY-MM-DD) as a string")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ScenarioError(path, f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


def _check_comment(comment: Any) -> None:
    if comment is None:
        return
    if not isinstance(comment, list) or not all(isinstance(line, str) for line in comment):
        raise ScenarioError(COMMENT_KEY, "a comment is a list of strings")


def _message(data: Any, message: Message, path: str, refused: tuple[str, ...] = ()) -> Message:
    """Proto JSON (snake_case or camelCase field names) into `message`; `refused`: fields the
    scenario fills itself (the case id)."""
    if not isinstance(data, dict):
        raise ScenarioError(path, "must be a JSON object")
    for name in refused:
        if name in data:
            raise ScenarioError(f"{path}.{name}", "the scenario fills this in itself; leave it out")
    try:
        return json_format.ParseDict(data, message)
    except json_format.ParseError as error:
        raise ScenarioError(path, _plain_parse_error(str(error))) from None


def _plain_parse_error(text: str) -> str:
    found = re.search(r'has no field named "([^"]+)"', text)
    if found:
        return f"unknown field {found.group(1)!r}"
    return text


def _application(data: Any) -> tuple[case_pb2.CreateApplicationRequest, date]:
    request = _message(data, case_pb2.CreateApplicationRequest(), "application")
    assert isinstance(request, case_pb2.CreateApplicationRequest)
    if not request.application_date:
        raise ScenarioError("application.application_date", "required: the case starts on it")
    applied = iso_date(request.application_date, "application.application_date")
    if not request.idempotency_key:
        request.idempotency_key = DEFAULT_IDEMPOTENCY_KEY
    try:
        validate_application(request, applied)
    except FieldViolations as error:
        where, text = error.violations[0]
        raise ScenarioError(f"application.{where}", text) from None
    return request, applied


def _hmrc(data: Any) -> dict[str, int]:
    if not isinstance(data, dict):
        raise ScenarioError("hmrc", "must be an object of tax year (\"2024-25\") to annual income in pence")
    table: dict[str, int] = {}
    for year, pence in data.items():
        _tax_year(year, f"hmrc.{year}")
        table[year] = _annual_pence(pence, f"hmrc.{year}")
    return table


def _tax_year(year: Any, path: str) -> str:
    found = _TAX_YEAR.match(year) if isinstance(year, str) else None
    if not found or (int(found.group(1)) + 1) % 100 != int(found.group(2)):
        raise ScenarioError(path, "a tax year is written like \"2024-25\"")
    return str(year)


def _annual_pence(pence: Any, path: str) -> int:
    if isinstance(pence, bool) or not isinstance(pence, int) or pence < 0:
        raise ScenarioError(path, "annual income in whole pence, 0 or more")
    return pence


# --- events -------------------------------------------------------------------------------------

def _json_field(data: Any, path: str, name: str, json_name: str) -> Any:
    """`name` given as a JSON object stands for the proto's `json_name` string (more readable in a
    scenario file than JSON inside a string); not both."""
    if not isinstance(data, dict) or name not in data:
        return data
    if json_name in data:
        raise ScenarioError(f"{path}.{name}", f"give {name} or {json_name}, not both")
    if not isinstance(data[name], dict):
        raise ScenarioError(f"{path}.{name}", "must be a JSON object")
    rest = {key: value for key, value in data.items() if key != name}
    return {**rest, json_name: json.dumps(data[name])}


def _report_change(data: Any, path: str) -> case_pb2.ReportChangeRequest:
    data = _json_field(data, path, "details", "details_json")
    message = _message(data, case_pb2.ReportChangeRequest(), path, refused=("case_id",))
    assert isinstance(message, case_pb2.ReportChangeRequest)
    return message


def _review_change(data: Any, path: str) -> case_pb2.ReviewChangeRequest:
    data = _json_field(data, path, "corrected_details", "corrected_details_json")
    message = _message(data, case_pb2.ReviewChangeRequest(), path, refused=("case_id",))
    assert isinstance(message, case_pb2.ReviewChangeRequest)
    if message.change_no < 1:
        raise ScenarioError(f"{path}.change_no", "required: the number of the change, from 1 in the order reported")
    return message


def _report_direct_payment(data: Any, path: str) -> payments_pb2.ReportDirectPaymentRequest:
    message = _message(data, payments_pb2.ReportDirectPaymentRequest(), path, refused=("case_id",))
    assert isinstance(message, payments_pb2.ReportDirectPaymentRequest)
    iso_date(message.due_date, f"{path}.due_date")
    return message


def _signal_case(data: Any, path: str) -> CaseworkerAction:
    if not isinstance(data, dict):
        raise ScenarioError(path, "must be a JSON object")
    for key in data:
        if key not in ("action", "payload", "actor"):
            raise ScenarioError(f"{path}.{key}", "unknown key (expected action, payload, actor)")
    action = data.get("action")
    if action not in ACTIONS:
        raise ScenarioError(f"{path}.action", f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    payload = data.get("payload", {})
    if not isinstance(payload, dict):
        raise ScenarioError(f"{path}.payload", "must be a JSON object")
    actor = data.get("actor", "")
    if not isinstance(actor, str):
        raise ScenarioError(f"{path}.actor", "must be a string")
    return CaseworkerAction(action, payload, actor)


def _payment(data: Any, path: str) -> IncomingPayment:
    if not isinstance(data, dict):
        raise ScenarioError(path, "must be a JSON object")
    for key in data:
        if key not in ("amount_pence", "method"):
            raise ScenarioError(f"{path}.{key}", "unknown key (expected amount_pence, method)")
    amount = data.get("amount_pence")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ScenarioError(f"{path}.amount_pence", "required: whole pence, more than 0")
    method = data.get("method", "direct_debit")
    name = f"METHOD_{str(method).upper()}"
    if name not in payments_pb2.Method.keys():
        methods = ", ".join(m.removeprefix("METHOD_").lower() for m in payments_pb2.Method.keys()
                            if m != "METHOD_UNSPECIFIED")
        raise ScenarioError(f"{path}.method", f"one of {methods}")
    return IncomingPayment(amount, name)


def _hmrc_income(data: Any, path: str) -> HmrcFigure:
    if not isinstance(data, dict):
        raise ScenarioError(path, "must be a JSON object")
    for key in data:
        if key not in ("annual_pence", "tax_year"):
            raise ScenarioError(f"{path}.{key}", "unknown key (expected annual_pence, tax_year)")
    if "annual_pence" not in data:
        raise ScenarioError(f"{path}.annual_pence", "required: the annual income HMRC sends, in whole pence")
    annual = _annual_pence(data["annual_pence"], f"{path}.annual_pence")
    year = _tax_year(data["tax_year"], f"{path}.tax_year") if "tax_year" in data else ""
    return HmrcFigure(annual, year)


EVENT_KINDS = {
    "report_change": _report_change,
    "review_change": _review_change,
    "signal_case": _signal_case,
    "payment": _payment,
    "report_direct_payment": _report_direct_payment,
    "hmrc_income": _hmrc_income,
}


def _events(data: Any, applied: date, until: date) -> list[Event]:
    if not isinstance(data, list):
        raise ScenarioError("events", "must be a list")
    return [_event(item, f"events[{i}]", applied, until) for i, item in enumerate(data)]


def _event(data: Any, path: str, applied: date, until: date) -> Event:
    if not isinstance(data, dict):
        raise ScenarioError(path, "an event is a JSON object")
    if "on" not in data:
        raise ScenarioError(f"{path}.on", "required: the case-calendar day it happens")
    on = iso_date(data["on"], f"{path}.on")
    if on < applied:
        raise ScenarioError(f"{path}.on", f"is before the application ({applied.isoformat()})")
    if on > until:
        raise ScenarioError(f"{path}.on", f"is after `until` ({until.isoformat()})")
    actions = [key for key in data if key != "on"]
    for key in actions:
        if key not in EVENT_KINDS:
            raise ScenarioError(f"{path}.{key}", f"unknown action (one of {', '.join(EVENT_KINDS)})")
    if len(actions) != 1:
        raise ScenarioError(path, f"exactly one action besides \"on\" (one of {', '.join(EVENT_KINDS)})")
    kind = actions[0]
    return Event(on, kind, EVENT_KINDS[kind](data[kind], f"{path}.{kind}"), f"{path}.{kind}")
