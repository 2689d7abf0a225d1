"""The console's action forms: what each asks, how its answers are checked, and what it sends.

Each form is declared once (`ActionForm`): the page renders its fields, `validate` checks a
submission and returns either the payload for the service or the GOV.UK error messages (field id,
text), in the order of the fields, so the error summary follows the page. Nothing is sent while a
message remains. Messages say what to do ("Enter a reason for the hold"), as the Design System asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.changes import PARTIES, SERVICE_TYPES, ChangeKind, ChangeValidationError, check_details, detail_fields
from domain.lifecycle import CLOSURE_ON_REQUEST, CLOSURE_REASONS
from domain.service_type import COLLECT_AND_PAY_REASONS

MAX_TEXT = 2000
Errors = list[tuple[str, str]]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"        # text | textarea | radios | date | number | money
    required: bool = True
    missing: str = ""         # the message when a required field is empty
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()   # radios: (value, label)
    maximum: int | None = None

    @property
    def anchor(self) -> str:
        """The id the error summary links to: a date's first box, a radio group's first radio."""
        if self.kind == "date":
            return f"{self.name}-day"
        return self.name


@dataclass(frozen=True)
class ActionForm:
    slug: str           # /cases/{id}/{slug}
    action: str         # the SignalCase action
    title: str
    button: str
    fields: tuple[Field, ...]
    description: str = ""


CLOSURE_LABELS = {
    "receiving_parent_request": "The receiving parent asked for the case to close",
    "paying_parent_died": "The paying parent died",
    "receiving_parent_died": "The receiving parent died",
    "child_died": "A child died",
    "party_left_uk": "A parent left the UK",
    "receiving_parent_no_longer_caring": "The receiving parent no longer cares for the children",
    "parents_living_together": "The parents live together",
}
assert set(CLOSURE_LABELS) == CLOSURE_REASONS - {"no_qualifying_child"}, "every closure a caseworker records"

ACTION_FORMS: dict[str, ActionForm] = {form.slug: form for form in (
    ActionForm("note", "add_note", "Add a note", "Add note", (
        Field("text", "Note", "textarea", missing="Enter the note", maximum=MAX_TEXT),
    )),
    ActionForm("request-review", "request_manual_review", "Request a manual review", "Request review", (
        Field("reason", "Why does this case need a manual review?", "textarea",
              missing="Enter why the case needs a manual review", maximum=MAX_TEXT),
    )),
    ActionForm("complete-review", "complete_manual_review", "Complete the manual review", "Complete review", (
        Field("note", "What did the review find? (optional)", "textarea", required=False, maximum=MAX_TEXT),
    )),
    ActionForm("hold", "put_on_hold", "Put the case on hold", "Put on hold", (
        Field("reason", "Why is the case going on hold?", "textarea", missing="Enter a reason for the hold",
              maximum=MAX_TEXT),
    ), description="Nothing is charged, collected or sent on a case on hold until it is released."),
    ActionForm("release", "release_hold", "Release the hold", "Release hold", (
        Field("note", "Note (optional)", "textarea", required=False, maximum=MAX_TEXT),
    )),
    ActionForm("safeguarding", "flag_safeguarding", "Flag safeguarding", "Flag safeguarding", (
        Field("reason", "Why does this case need safeguarding?", "textarea",
              missing="Enter why the case needs safeguarding", maximum=MAX_TEXT,
              hint="Do not write any address, phone number or other contact detail here."),
    ), description="Each parent's contact details are then withheld from the other on every letter and page."),
    ActionForm("collect-and-pay", "switch_to_collect_and_pay", "Move to Collect & Pay", "Move to Collect & Pay", (
        Field("reason", "Why is the case moving to Collect & Pay?", "radios",
              missing="Select why the case is moving to Collect & Pay",
              options=tuple((key, text[0].upper() + text[1:]) for key, text in COLLECT_AND_PAY_REASONS.items())),
        Field("note", "Note (optional)", "textarea", required=False, maximum=MAX_TEXT),
    )),
    ActionForm("close", "close_case", "Close the case", "Close case", (
        Field("reason", "Why is the case closing?", "radios", missing="Select why the case is closing",
              options=tuple(CLOSURE_LABELS.items())),
        Field("event_date", "When did it happen?", "date", missing="Enter the date it happened",
              hint="The date of the event, or the day the receiving parent asked. For example, 27 3 2026."),
        Field("note", "Note (optional)", "textarea", required=False, maximum=MAX_TEXT),
    ), description="Liability ends from the date of the event; the parents are sent the closure letters."),
)}
assert CLOSURE_ON_REQUEST in CLOSURE_LABELS


def _date_value(name: str, data: Mapping[str, str]) -> tuple[str, str]:
    """(ISO date, problem) from a GOV.UK date input's day, month and year boxes."""
    parts = [data.get(f"{name}-{part}", "").strip() for part in ("day", "month", "year")]
    if not any(parts):
        return "", "missing"
    if not all(part.isdigit() for part in parts):
        return "", "must be a real date, for example 27 3 2026"
    day, month, year = (int(part) for part in parts)
    if year < 1900:
        return "", "year must include 4 numbers"
    try:
        return date(year, month, day).isoformat(), ""
    except ValueError:
        return "", "must be a real date, for example 27 3 2026"


def _check_field(field: Field, data: Mapping[str, str]) -> tuple[str, str]:
    """(value, message): the field's value as the service wants it, or what is wrong."""
    if field.kind == "date":
        value, problem = _date_value(field.name, data)
        if problem == "missing":
            return "", field.missing if field.required else ""
        return value, (f"{field.label.rstrip('?')}: {problem}" if problem else "")
    value = data.get(field.name, "").strip()
    if not value:
        return "", field.missing if field.required else ""
    if field.options and value not in {key for key, _ in field.options}:
        return "", field.missing or f"Select one of the options for {field.label.lower()}"
    if field.maximum is not None and field.kind in ("text", "textarea") and len(value) > field.maximum:
        return "", f"{field.label.removesuffix(' (optional)')} must be {field.maximum} characters or fewer"
    return value, ""


def validate(form: ActionForm, data: Mapping[str, str]) -> tuple[dict[str, str], Errors]:
    """The payload for the action, or the error messages (field anchor, text)."""
    payload: dict[str, str] = {}
    errors: Errors = []
    for field in form.fields:
        value, problem = _check_field(field, data)
        if problem:
            errors.append((field.anchor, problem))
        elif value:
            payload[field.name] = value
    return payload, errors


# --- reviewing a change: apply or reject, with the details as verified ---------------------------

OUTCOMES = (("apply", "Apply the change"), ("reject", "Reject the change"))
CORRECTED = "corrected_"
_DETAIL_FIELDS = {
    "weekly_income_pence": Field("weekly_income_pence", "Weekly income (£)", "money", required=False,
                                 hint="Gross weekly income as verified, in pounds and pence"),
    "nights": Field("nights", "Nights a year with the paying parent", "number", required=False, maximum=366),
    "shared_care_nights": Field("shared_care_nights", "Nights a year with the paying parent", "number",
                                required=False, maximum=366),
    "count": Field("count", "Number of relevant other children", "number", required=False, maximum=50),
    "child_id": Field("child_id", "Child reference", required=False),
    "receiving_parent_id": Field("receiving_parent_id", "Receiving parent reference", required=False),
    "date_of_birth": Field("date_of_birth", "Child's date of birth", "date", required=False),
    "party": Field("party", "Whose change is it?", "radios", required=False,
                   options=tuple((party, party.replace("_", " ").capitalize()) for party in PARTIES)),
    "status": Field("status", "Employment", "radios", required=False,
                    options=(("started", "Started work"), ("stopped", "Stopped work"))),
    "service_type": Field("service_type", "Service type", "radios", required=False,
                          options=tuple((kind, "Collect & Pay" if kind == "collect_and_pay" else "Direct Pay")
                                        for kind in SERVICE_TYPES)),
    "duty_to_report": Field("duty_to_report", "Must the paying parent report further changes?", "radios",
                            required=False, options=(("yes", "Yes"), ("no", "No"))),
}


def correction_fields(kind: str) -> tuple[Field, ...]:
    """The details of a change of `kind` a reviewer may correct, each named `corrected_<detail>`."""
    try:
        required, optional = detail_fields(kind)
    except ValueError:
        return ()
    names = sorted(required) + sorted(optional - required)
    return tuple(_corrected(_DETAIL_FIELDS[name]) for name in names if name in _DETAIL_FIELDS)


def _corrected(field: Field) -> Field:
    return Field(CORRECTED + field.name, field.label, field.kind, False, "", field.hint, field.options, field.maximum)


def _detail_value(field: Field, raw: str) -> tuple[Any, str]:
    if field.kind == "money":
        try:
            pounds = Decimal(raw.replace(",", "").removeprefix("£"))
        except InvalidOperation:
            return None, f"{field.label.removesuffix(' (£)')} must be an amount of money, like 350.00"
        if pounds < 0 or pounds != pounds.quantize(Decimal("0.01")):
            return None, f"{field.label.removesuffix(' (£)')} must be pounds and pence, like 350.00"
        return int(pounds * 100), ""
    if field.kind == "number":
        if not raw.isdigit() or (field.maximum is not None and int(raw) > field.maximum):
            return None, f"{field.label} must be a whole number from 0 to {field.maximum}"
        return int(raw), ""
    if field.name == CORRECTED + "duty_to_report":
        return raw == "yes", ""
    return raw, ""


def validate_review(kind: str, data: Mapping[str, str]) -> tuple[str, str, dict[str, Any] | None, Errors]:
    """(outcome, reason, corrected details or None, errors) from the review form."""
    errors: Errors = []
    outcome = data.get("outcome", "")
    if outcome not in {key for key, _ in OUTCOMES}:
        errors.append(("outcome", "Select whether to apply or reject the change"))
    reason = data.get("reason", "").strip()
    if not reason:
        errors.append(("reason", "Enter the reason for your decision"))
    elif len(reason) > MAX_TEXT:
        errors.append(("reason", f"The reason must be {MAX_TEXT} characters or fewer"))
    corrected: dict[str, Any] = {}
    for field in correction_fields(kind):
        if field.kind == "date":
            raw, problem = _date_value(field.name, data)
            if problem and problem != "missing":
                errors.append((field.anchor, f"{field.label} {problem}"))
            elif raw:
                corrected[field.name.removeprefix(CORRECTED)] = raw
            continue
        raw = data.get(field.name, "").strip()
        if not raw:
            continue
        value, problem = _detail_value(field, raw)
        if problem:
            errors.append((field.anchor, problem))
        else:
            corrected[field.name.removeprefix(CORRECTED)] = value
    if corrected and outcome == "reject":
        errors.append((CORRECTED + next(iter(corrected)), "Leave the corrected details empty when rejecting a change"))
    elif corrected and not errors:
        try:
            check_details(ChangeKind(kind), corrected)
        except ChangeValidationError as error:
            errors.append((field_for_service(error.field), _sentence(error.message)))
    return outcome, reason, (corrected or None), errors


def field_for_service(field: str) -> str:
    """The form field a service's field violation is about: `payload_json.reason` -> `reason`,
    `details.nights` -> `corrected_nights`."""
    if field.startswith("details."):
        return CORRECTED + field.removeprefix("details.")
    if field == "corrected_details":
        return field
    return field.removeprefix("payload_json.").removeprefix("details_json.")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text
