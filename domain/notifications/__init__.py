"""Notifications domain (pure): templates as data, strict per-recipient rendering through the
safeguarding redaction, and channel/safe-time choice from contact preferences."""

from domain.notifications.channels import (
    ACCESSIBLE_FORMATS,
    CASEWORKER_FORMATS,
    ChannelError,
    ContactPreferences,
    choose_channel,
    deliver_not_before,
    reachable_channels,
)
from domain.notifications.render import (
    CHANNELS,
    BadVariable,
    LanguageChoice,
    MissingVariable,
    RenderedMessage,
    RenderError,
    TranslationMismatch,
    UnknownTemplate,
    check_translation,
    choose_languages,
    recipient_context,
    render,
    render_for_recipient,
    required_variables,
)
from domain.notifications.templates import TEMPLATES, Template
from domain.notifications.templates_cy import AWAITING_TRANSLATION, WELSH
from domain.notifications.wording import ChildRecord

__all__ = [
    "ACCESSIBLE_FORMATS", "AWAITING_TRANSLATION", "CASEWORKER_FORMATS", "CHANNELS", "TEMPLATES", "WELSH", "BadVariable", "ChannelError", "ChildRecord",
    "ContactPreferences", "LanguageChoice", "MissingVariable", "RenderError", "RenderedMessage", "Template",
    "TranslationMismatch", "UnknownTemplate", "check_translation", "choose_channel", "choose_languages",
    "deliver_not_before", "reachable_channels", "recipient_context", "render",
    "render_for_recipient", "required_variables",
]
