"""Notifications domain (pure): templates as data, strict per-recipient rendering through the
safeguarding redaction, and channel/safe-time choice from contact preferences."""

from domain.notifications.channels import (
    ChannelError,
    ContactPreferences,
    choose_channel,
    deliver_not_before,
    reachable_channels,
)
from domain.notifications.render import (
    CHANNELS,
    BadVariable,
    MissingVariable,
    RenderedMessage,
    RenderError,
    UnknownTemplate,
    recipient_context,
    render,
    render_for_recipient,
    required_variables,
)
from domain.notifications.templates import TEMPLATES, Template

__all__ = [
    "CHANNELS", "TEMPLATES", "BadVariable", "ChannelError", "ContactPreferences", "MissingVariable",
    "RenderError", "RenderedMessage", "Template", "UnknownTemplate", "choose_channel",
    "deliver_not_before", "reachable_channels", "recipient_context", "render",
    "render_for_recipient", "required_variables",
]
