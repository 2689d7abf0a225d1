"""Strict, per-recipient rendering of a template.

Strict: every placeholder must have a value, or rendering fails with `MissingVariable` naming
the template and the variable, before anything is queued or sent.

Per recipient: every party record and every caller-supplied variable passes through
`domain.safeguarding.redact_for_viewer` for the addressee before a template sees it. That is the
one redaction mechanism; no template decides what to leave out. Ids in caller text (the
explanation's party and child ids) become words first (`domain.notifications.wording`).

In the addressee's language: English, Welsh, or both (Welsh first, then English). A preference
for a language we hold no templates in is sent in English, and the message says so
(`language_note`) so the outbox records it. Every Welsh template must use exactly the variables
of its English one (`check_translation`), checked for every template when this module loads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.money import format_pence
from domain.notifications.templates import TEMPLATES, Template
from domain.notifications.templates_cy import AWAITING_TRANSLATION, WELSH
from domain.notifications.wording import ChildRecord, id_words, long_date, worded
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


class TranslationMismatch(RenderError):
    def __init__(self, english: Template, welsh: Template, only_english: set[str], only_welsh: set[str]):
        self.english, self.welsh = english, welsh
        differences = []
        if only_english:
            differences.append(f"only the English uses {', '.join(sorted(only_english))}")
        if only_welsh:
            differences.append(f"only the Welsh uses {', '.join(sorted(only_welsh))}")
        super().__init__(f"English template {english.name!r} and Welsh template {welsh.name!r} differ in their "
                         f"variables: {'; '.join(differences)}")


ENGLISH, WELSH_LANGUAGE, BOTH = "en", "cy", "both"
LANGUAGE_TEMPLATES: dict[str, dict[str, Template]] = {ENGLISH: TEMPLATES, WELSH_LANGUAGE: WELSH}
# Between the two texts of a bilingual message.
BILINGUAL_DIVIDER = "\n\n* * *\n\n"


@dataclass(frozen=True)
class LanguageChoice:
    languages: tuple[str, ...]     # the texts of the message, in order
    note: str = ""                 # why the preference was not followed, if it was not

    @property
    def code(self) -> str:
        return "+".join(self.languages)


def choose_languages(preference: str) -> LanguageChoice:
    """'' or 'en': English; 'cy': Welsh; 'both': Welsh then English; anything else: English, noted."""
    if preference in ("", ENGLISH):
        return LanguageChoice((ENGLISH,))
    if preference == WELSH_LANGUAGE:
        return LanguageChoice((WELSH_LANGUAGE,))
    if preference == BOTH:
        return LanguageChoice((WELSH_LANGUAGE, ENGLISH))
    return LanguageChoice((ENGLISH,), f"asked for language {preference!r}, which has no templates; sent in English")


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    channel: str
    subject: str
    body: str
    # The addressee's own name and postal address, for the letter's address block. Empty for
    # email and SMS. It is the recipient's own data, never the other party's.
    address_lines: tuple[str, ...] = ()
    language: str = ENGLISH        # "en", "cy" or "cy+en"
    language_note: str = ""        # set when the addressee's preference could not be followed


def template_named(name: str, language: str = ENGLISH) -> Template:
    template = LANGUAGE_TEMPLATES[language].get(name)
    if template is None:
        raise UnknownTemplate(name)
    return template


def required_variables(template: Template) -> set[str]:
    """Every top-level variable a template uses (for docs, previews and tests)."""
    return {m.group(1).split(".")[0] for text in (template.subject, template.body, template.sms)
            for m in _PLACEHOLDER.finditer(text)}


def placeholders(template: Template) -> set[str]:
    """Every placeholder with its format (`amount|money`): a translation must keep formats too."""
    return {m.group(0)[1:-1] for text in (template.subject, template.body, template.sms)
            for m in _PLACEHOLDER.finditer(text)}


def check_translation(english: Template, welsh: Template) -> None:
    """Refuses a Welsh template whose variables differ from its English one's, naming both."""
    ours, theirs = placeholders(english), placeholders(welsh)
    if ours != theirs:
        raise TranslationMismatch(english, welsh, ours - theirs, theirs - ours)


def check_all_translations() -> None:
    missing = set(TEMPLATES) ^ set(WELSH)
    if missing:
        raise RenderError(f"templates held in one language only: {', '.join(sorted(missing))}")
    for name, english in TEMPLATES.items():
        check_translation(english, WELSH[name])


def render_text(template_name: str, text: str, context: Mapping[str, Any], language: str = ENGLISH) -> str:
    def substitute(match: re.Match[str]) -> str:
        path, fmt = match.group(1), match.group(2)
        value = _lookup(context, path)
        if value is _MISSING or value is None:
            raise MissingVariable(template_name, path)
        return _format(template_name, path, value, fmt, language)

    return _PLACEHOLDER.sub(substitute, text)


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _format(template_name: str, path: str, value: Any, fmt: str | None, language: str = ENGLISH) -> str:
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
        return long_date(day, language)
    if fmt == "lines":
        if not isinstance(value, list) or not value:
            raise BadVariable(template_name, path, "must be a non-empty list of lines")
        return "\n".join(f"  {index}. {line}" for index, line in enumerate(value, 1))
    raise BadVariable(template_name, path, f"uses an unknown format {fmt!r}")


def render(template_name: str, channel: str, context: Mapping[str, Any], language: str = "") -> RenderedMessage:
    """Renders an already-redacted context in the `language` preference. Prefer `render_for_recipient`."""
    template_named(template_name)
    if channel not in CHANNELS:
        raise RenderError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    choice = choose_languages(language)
    texts = [_render_one(template_named(template_name, code), channel, context, _wording_language(template_name, code))
             for code in choice.languages]
    subject = " / ".join(subject for subject, _ in texts)
    body = BILINGUAL_DIVIDER.join(body for _, body in texts)
    address = postal_address_lines(context.get("recipient", {})) if channel == "letter" else ()
    return RenderedMessage(template_name, channel, subject, body, address, choice.code, choice.note)


def _wording_language(template_name: str, language: str) -> str:
    """Placeholder Welsh is English text: its dates stay English until the translation arrives."""
    return ENGLISH if language == WELSH_LANGUAGE and template_name in AWAITING_TRANSLATION else language


def _render_one(template: Template, channel: str, context: Mapping[str, Any], language: str) -> tuple[str, str]:
    subject = render_text(template.name, template.subject, context, language)
    if channel == "sms":
        return subject, render_text(template.name, template.sms, context, language)
    return subject, render_text(template.name, template.body, context, language)


def postal_address_lines(recipient: Mapping[str, Any]) -> tuple[str, ...]:
    # An address given on one line separates its lines with commas ("1 Example Street, Testtown").
    lines = [recipient.get("full_name", "")] + re.split(r"[\n,]", str(recipient.get("address", "")))
    lines.append(recipient.get("postcode", ""))
    return tuple(line.strip() for line in lines if line and line.strip())


def recipient_context(variables: Mapping[str, Any], recipient_party_id: str,
                      parties: Mapping[str, Mapping[str, Any]], words: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a template may see when addressed to `recipient_party_id`.

    `recipient` is the addressee's own record (they may see their own details); `other` is
    the other party's record redacted for the addressee; caller variables are treated as
    belonging to nobody in particular, so any protected field in them is withheld too.
    `words` (from `wording.id_words`) turns the ids in caller text into words first.
    """
    viewer = Viewer(party_id=recipient_party_id)
    context: dict[str, Any] = dict(redact_for_viewer(worded(dict(variables), words or {}), "", viewer))
    context["recipient"] = redact_for_viewer(dict(parties.get(recipient_party_id, {})), recipient_party_id, viewer)
    others = [pid for pid in parties if pid != recipient_party_id]
    if others:
        context["other"] = redact_for_viewer(dict(parties[others[0]]), others[0], viewer)
    return context


def render_for_recipient(template_name: str, channel: str, variables: Mapping[str, Any],
                         recipient_party_id: str,
                         parties: Mapping[str, Mapping[str, Any]], language: str = "",
                         roles: Mapping[str, str] | None = None,
                         children: Mapping[str, ChildRecord] | None = None,
                         safeguarded: bool = False) -> RenderedMessage:
    """`language` is the addressee's preference; `roles` and `children` name the ids of the
    explanation in words (a safeguarded case names children by date of birth only)."""
    words = id_words(roles or {}, children or {}, safeguarded)
    return render(template_name, channel, recipient_context(variables, recipient_party_id, parties, words), language)


check_all_translations()
