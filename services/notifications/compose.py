"""Turning a send request into a rendered, channel-chosen, safe-time-deferred outbox entry.

Pure apart from the `now` it is given; both Send and Preview use it, so a caseworker previews
exactly what would be queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.notifications import (
    CASEWORKER_FORMATS,
    ContactPreferences,
    RenderedMessage,
    choose_channel,
    deliver_not_before,
    reachable_channels,
    render_for_recipient,
)
from domain.safeguarding import Viewer, redact_for_viewer
from services.notifications.repository import CaseView, PreparedNotification


@dataclass(frozen=True)
class Composed:
    prepared: PreparedNotification
    rendered: RenderedMessage


def compose(idempotency_key: str, case_id: str, recipient_party_id: str, template: str,
            requested_channel: str, variables: dict[str, Any], view: CaseView, now: datetime) -> Composed:
    recipient = view.parties[recipient_party_id]
    preferences = view.preferences.get(recipient_party_id, ContactPreferences())
    channel = choose_channel(requested_channel, preferences, view.profile, recipient_party_id,
                             reachable_channels(recipient))
    rendered = render_for_recipient(template, channel, variables, recipient_party_id, view.parties,
                                    language=preferences.language, roles=view.roles, children=view.children,
                                    safeguarded=view.profile.active)
    stored_variables = redact_for_viewer(dict(variables), "", Viewer(party_id=recipient_party_id))
    for_caseworker = channel == "letter" and preferences.accessible_format in CASEWORKER_FORMATS
    prepared = PreparedNotification(
        idempotency_key=idempotency_key, case_id=case_id, recipient_party_id=recipient_party_id,
        template=template, channel=channel, variables=stored_variables, subject=rendered.subject,
        body=rendered.body, deliver_after=deliver_not_before(now, channel, preferences),
        language=rendered.language, language_note=rendered.language_note,
        status="for_caseworker" if for_caseworker else "queued",
        failure_reason=(f"the recipient asked for {preferences.accessible_format}: a caseworker arranges this letter"
                        if for_caseworker else ""),
    )
    return Composed(prepared, rendered)
