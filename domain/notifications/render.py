"""Strict, per-recipient rendering of a template.

Strict: every placeholder must have a value, or rendering fails with `MissingVariable` naming
the template and the variable, before anything is queued or sent.

Per recipient: every party record and every caller-supplied variable passes through
`domain.safeguarding.redact_for_viewer` for the addressee before a template sees it. That is the
one redaction mechanism; no template decides what to leave out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.money import format_pence
from domain.notifications.templates import TEMPLATES, Template
from domain.safeguarding import Viewer, redact_for_viewer

CHANNELS = ("email", "sms", "letter")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(?:\|([a-z]+))?\}")
_MISSING = object()


class RenderError(ValueError):
    """A message cannot be rendered; the text says which template and what is wrong."""


class UnknownTemplate(RenderError):
    def __init__(self, template: str):
        self.template = template
        super().__init__(f"unknown template {template!r}; known: {', '.join(sorted(TEMPLATES))}")


class MissingVariable(RenderError):
    def __init__(self, template: str, variable: str):
        self.template, self.variable = template, variable
        super().__init__(f"template {template!r} needs variable {variable!r}, which was not given")


class BadVariable(RenderError):
    def __init__(self, template: str, variable: str, problem: str):
        self.template, self.variable = template, variable
        super().__init__(f"template {template!r}: variable {variable!r} {problem}")


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    channel: str
    subject: str
    body: str
    # The addressee's own name and postal address, for the letter's address block. Empty for
    # email and SMS. It is the recipient's own data, never the other party's.
    address_lines: tuple[str, ...] = ()


def template_named(name: str) -> Template:
    template = TEMPLATES.get(name)
    if template is None:
        raise UnknownTemplate(name)
    return template


def required_variables(template: Template) -> set[str]:
    """Every top-level variable a template uses (for docs, previews and tests)."""
    return {m.group(1).split(".")[0] for text in (template.subject, template.body, template.sms)
            for m in _PLACEHOLDER.finditer(text)}


def render_text(template_name: str, text: str, context: Mapping[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        path, fmt = match.group(1), match.group(2)
        value = _lookup(context, path)
        if value is _MISSING or value is None:
            raise MissingVariable(template_name, path)
        return _format(template_name, path, value, fmt)

    return _PLACEHOLDER.sub(substitute, text)


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _format(template_name: str, path: str, value: Any, fmt: str | None) -> str:
    if fmt is None:
        if isinstance(value, (dict, list)):
            raise BadVariable(template_name, path, "is a record or list; name one of its fields")
        return str(value)
    if fmt == "money":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadVariable(template_name, path, f"must be whole pence (an integer), got {value!r}")
        return format_pence(value)
    if fmt == "date":
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            raise BadVariable(template_name, path, f"must be a date YYYY-MM-DD, got {value!r}") from None
        return f"{day.day} {day:%B %Y}"
    if fmt == "lines":
        if not isinstance(value, list) or not value:
            raise BadVariable(template_name, path, "must be a non-empty list of lines")
        return "\n".join(f"  {index}. {line}" for index, line in enumerate(value, 1))
    raise BadVariable(template_name, path, f"uses an unknown format {fmt!r}")


def render(template_name: str, channel: str, context: Mapping[str, Any]) -> RenderedMessage:
    """Renders an already-redacted context. Prefer `render_for_recipient`."""
    template = template_named(template_name)
    if channel not in CHANNELS:
        raise RenderError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    subject = render_text(template.name, template.subject, context)
    if channel == "sms":
        return RenderedMessage(template.name, channel, subject, render_text(template.name, template.sms, context))
    body = render_text(template.name, template.body, context)
    address = postal_address_lines(context.get("recipient", {})) if channel == "letter" else ()
    return RenderedMessage(template.name, channel, subject, body, address)


def postal_address_lines(recipient: Mapping[str, Any]) -> tuple[str, ...]:
    lines = [recipient.get("full_name", "")] + str(recipient.get("address", "")).split("\n")
    lines.append(recipient.get("postcode", ""))
    return tuple(line.strip() for line in lines if line and line.strip())


def recipient_context(variables: Mapping[str, Any], recipient_party_id: str,
                      parties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a template may see when addressed to `recipient_party_id`.

    `recipient` is the addressee's own record (they may see their own details); `other` is
    the other party's record redacted for the addressee; caller variables are treated as
    belonging to nobody in particular, so any protected field in them is withheld too.
    """
    viewer = Viewer(party_id=recipient_party_id)
    context: dict[str, Any] = dict(redact_for_viewer(dict(variables), "", viewer))
    context["recipient"] = redact_for_viewer(dict(parties.get(recipient_party_id, {})), recipient_party_id, viewer)
    others = [pid for pid in parties if pid != recipient_party_id]
    if others:
        context["other"] = redact_for_viewer(dict(parties[others[0]]), others[0], viewer)
    return context


def render_for_recipient(template_name: str, channel: str, variables: Mapping[str, Any],
                         recipient_party_id: str,
                         parties: Mapping[str, Mapping[str, Any]]) -> RenderedMessage:
    return render(template_name, channel, recipient_context(variables, recipient_party_id, parties))
