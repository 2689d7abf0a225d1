"""Templates as data, strict rendering, per-recipient redaction, channels and safe times (pure)."""

from datetime import UTC, datetime, time

import pytest

from domain.notifications import (
    TEMPLATES,
    BadVariable,
    ChannelError,
    ContactPreferences,
    MissingVariable,
    UnknownTemplate,
    choose_channel,
    deliver_not_before,
    render_for_recipient,
    required_variables,
)
from domain.safeguarding import REDACTED, SafeguardingProfile, collect_and_pay_allowed
from tests.notifications.support import PP_DETAILS, RP_DETAILS, VARIABLES, protected_of, variables_for

PARTIES = {"rp": RP_DETAILS, "pp": PP_DETAILS}


def test_every_lifecycle_message_has_a_template_and_test_variables() -> None:
    assert set(TEMPLATES) == set(VARIABLES)
    for name, template in TEMPLATES.items():
        needed = required_variables(template) - {"recipient", "other"}
        assert needed <= set(variables_for(name, "C1")), name


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("channel", ["letter", "email", "sms"])
@pytest.mark.parametrize("recipient,other", [("rp", "pp"), ("pp", "rp")])
def test_every_template_renders_without_the_other_partys_protected_fields(template, channel, recipient, other) -> None:
    message = render_for_recipient(template, channel, variables_for(template, "C1"), recipient, PARTIES)
    text = "\n".join((message.subject, message.body, *message.address_lines))
    assert PARTIES[recipient]["full_name"] in text or channel == "sms"
    leaked = {value for value in protected_of(PARTIES[other]) if value in text}
    assert leaked == set()
    assert "{" not in text and "}" not in text
    if channel == "letter":
        assert message.address_lines[0] == PARTIES[recipient]["full_name"]
        assert PARTIES[recipient]["postcode"] in message.address_lines


def test_money_dates_and_explanation_are_in_plain_english() -> None:
    message = render_for_recipient("calculation_decision", "letter",
                                   variables_for("calculation_decision", "C1"), "rp", PARTIES)
    assert "£84.12 a week" in message.body
    assert "1 April 2026" in message.body
    assert "  2. Basic rate, 2 children: 16%" in message.body


def test_a_missing_variable_names_the_template_and_the_variable() -> None:
    variables = variables_for("payment_missed", "C1")
    del variables["arrears"]
    with pytest.raises(MissingVariable, match="'payment_missed' needs variable 'arrears'") as error:
        render_for_recipient("payment_missed", "letter", variables, "pp", PARTIES)
    assert (error.value.template, error.value.variable) == ("payment_missed", "arrears")


def test_a_missing_party_field_is_missing_too() -> None:
    with pytest.raises(MissingVariable, match="recipient.full_name"):
        render_for_recipient("case_closed", "email", variables_for("case_closed", "C1"), "rp",
                             {"rp": {"email": "a@example.org"}})


def test_money_must_be_pence_and_templates_must_exist() -> None:
    with pytest.raises(BadVariable, match="whole pence"):
        render_for_recipient("payment_received", "sms", {**variables_for("payment_received", "C1"), "amount": 12.5},
                             "rp", PARTIES)
    with pytest.raises(UnknownTemplate, match="nope"):
        render_for_recipient("nope", "sms", {}, "rp", PARTIES)


def test_caller_variables_with_protected_fields_are_withheld_too() -> None:
    variables = {**variables_for("change_outcome", "C1"), "outcome_reason": "see below",
                 "employer": "Refuge Bakery Ltd"}
    message = render_for_recipient("change_outcome", "letter", variables, "pp", PARTIES)
    assert "Refuge Bakery" not in message.body
    from domain.notifications import recipient_context
    assert recipient_context(variables, "pp", PARTIES)["employer"] == REDACTED
    assert recipient_context(variables, "pp", PARTIES)["other"]["address"] == REDACTED


def test_channel_honours_safety_then_preference_then_request() -> None:
    everything = {"letter", "email", "sms"}
    safeguarded = SafeguardingProfile(active=True, protected_party_ids=("rp",), safe_channel="email", no_phone=True)
    assert choose_channel("sms", ContactPreferences(), safeguarded, "rp", everything) == "email"
    assert choose_channel("sms", ContactPreferences(), safeguarded, "pp", everything) == "sms"
    assert choose_channel("sms", ContactPreferences(no_phone=True), SafeguardingProfile(), "pp", everything) == "letter"
    assert choose_channel("", ContactPreferences(channel="email"), SafeguardingProfile(), "pp", everything) == "email"
    assert choose_channel("", ContactPreferences(), SafeguardingProfile(), "pp", {"sms"}) == "sms"
    with pytest.raises(ChannelError, match="cannot be reached"):
        choose_channel("", ContactPreferences(no_phone=True), SafeguardingProfile(), "pp", {"sms"})
    with pytest.raises(ChannelError, match="no phone"):
        ContactPreferences(channel="sms", no_phone=True)


def test_safe_times_defer_email_and_sms_to_the_next_window_in_uk_time() -> None:
    evenings = ContactPreferences(safe_from=time(18, 0), safe_until=time(21, 0))
    summer_morning = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert deliver_not_before(summer_morning, "sms", evenings) == datetime(2026, 7, 1, 17, 0, tzinfo=UTC)
    late = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # GMT, after the window: next day
    assert deliver_not_before(late, "email", evenings) == datetime(2026, 1, 11, 18, 0, tzinfo=UTC)
    inside = datetime(2026, 1, 10, 19, 0, tzinfo=UTC)
    assert deliver_not_before(inside, "email", evenings) == inside
    assert deliver_not_before(summer_morning, "letter", evenings) == summer_morning
    overnight = ContactPreferences(safe_from=time(22, 0), safe_until=time(6, 0))
    assert deliver_not_before(datetime(2026, 1, 10, 23, 0, tzinfo=UTC), "sms", overnight) == \
        datetime(2026, 1, 10, 23, 0, tzinfo=UTC)
    assert deliver_not_before(datetime(2026, 1, 10, 12, 0, tzinfo=UTC), "sms", overnight) == \
        datetime(2026, 1, 10, 22, 0, tzinfo=UTC)


def test_collect_and_pay_without_consent_only_on_safeguarding_grounds() -> None:
    profile = SafeguardingProfile(active=True, protected_party_ids=("rp",))
    assert collect_and_pay_allowed(profile, "rp", other_party_consents=False)
    assert not collect_and_pay_allowed(profile, "pp", other_party_consents=False)
    assert not collect_and_pay_allowed(SafeguardingProfile(), "rp", other_party_consents=False)
    assert collect_and_pay_allowed(SafeguardingProfile(), "rp", other_party_consents=True)
