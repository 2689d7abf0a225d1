"""Which channel a message goes by, and when, honouring a party's contact preferences.

- `channel`: the party's preferred channel ('' = no preference; letter is the default).
- `no_phone`: never by SMS (or phone). A safeguarding profile's `no_phone` has the same effect.
- safe times: a window of UK local time (`safe_from`..`safe_until`, may wrap midnight) when an
  email or SMS may arrive. Outside it, delivery is deferred to the start of the next window. A
  letter is not deferred (the post does not arrive at a time we choose).

- `language`: '' or 'en' (English), 'cy' (Welsh), 'both' (Welsh and English in one message), or
  another language tag a party asked for: that one has no templates, so messages go in English
  and the outbox records the fallback.
- `accessible_format`: 'large_print' (letters set in 16pt or more, left-aligned), or 'braille' /
  'audio', which we cannot produce here: such a letter goes to a caseworker to arrange.

Pure: the caller passes the current instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.safeguarding import SafeguardingProfile

UK = ZoneInfo("Europe/London")
DEFAULT_CHANNEL = "letter"
ACCESSIBLE_FORMATS = ("", "large_print", "braille", "audio")
# Formats a caseworker arranges (a braille transcription, an audio recording) instead of the post.
CASEWORKER_FORMATS = ("braille", "audio")
_LANGUAGE_TAG = re.compile(r"^(both|[a-z]{2,3}(-[A-Za-z0-9]{1,8})*)?$")


class ChannelError(ValueError):
    pass


@dataclass(frozen=True)
class ContactPreferences:
    channel: str = ""
    no_phone: bool = False
    safe_from: time | None = None
    safe_until: time | None = None
    language: str = ""
    accessible_format: str = ""

    def __post_init__(self) -> None:
        if not _LANGUAGE_TAG.match(self.language):
            raise ChannelError(f"language {self.language!r} is not a language tag; use en, cy or both")
        if self.accessible_format not in ACCESSIBLE_FORMATS:
            raise ChannelError(f"unknown accessible format {self.accessible_format!r}; use large_print, "
                               "braille or audio")
        if self.channel not in ("", "email", "sms", "letter"):
            raise ChannelError(f"unknown channel {self.channel!r}; use email, sms or letter")
        if (self.safe_from is None) != (self.safe_until is None):
            raise ChannelError("safe times need both a start and an end")
        if self.safe_from is not None and self.safe_from == self.safe_until:
            raise ChannelError("safe times start and end at the same time")
        if self.no_phone and self.channel == "sms":
            raise ChannelError("SMS was chosen but the party asked for no phone contact")


def choose_channel(requested: str, preferences: ContactPreferences, profile: SafeguardingProfile,
                   party_id: str, reachable: set[str]) -> str:
    """The channel to use. `requested` ('' = no preference) is the caller's wish; the party's
    own preference and safety rules win over it. `reachable` = channels we hold details for."""
    forbidden = {"sms"} if preferences.no_phone or (profile.no_phone and profile.protects(party_id)) else set()
    safe = profile.safe_channel if profile.protects(party_id) else ""
    for candidate in (safe, preferences.channel, requested, DEFAULT_CHANNEL, "email", "sms"):
        if candidate and candidate not in forbidden and candidate in reachable:
            return candidate
    raise ChannelError(f"party {party_id} cannot be reached: no usable contact details "
                       f"(held: {', '.join(sorted(reachable)) or 'none'})")


def reachable_channels(party: dict) -> set[str]:
    found = set()
    if party.get("address"):
        found.add("letter")
    if party.get("email"):
        found.add("email")
    if party.get("phone"):
        found.add("sms")
    return found


def deliver_not_before(now: datetime, channel: str, preferences: ContactPreferences) -> datetime:
    """The earliest instant (UTC) the message may be delivered."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if channel == "letter" or preferences.safe_from is None or preferences.safe_until is None:
        return now
    local = now.astimezone(UK)
    if _inside(local.time(), preferences.safe_from, preferences.safe_until):
        return now
    start = datetime.combine(local.date(), preferences.safe_from, tzinfo=UK)
    if start <= local:
        start = datetime.combine(local.date() + timedelta(days=1), preferences.safe_from, tzinfo=UK)
    return start.astimezone(UTC)


def _inside(moment: time, start: time, end: time) -> bool:
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # window wraps midnight
