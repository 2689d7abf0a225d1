"""Welsh and bilingual messages, the translation check, the English fallback, and letters that
name people in words instead of the case's ids (pure)."""

import re

import pytest

from domain.notifications import (
    AWAITING_TRANSLATION,
    TEMPLATES,
    WELSH,
    ChildRecord,
    ContactPreferences,
    Template,
    TranslationMismatch,
    check_translation,
    render_for_recipient,
)
from domain.notifications.channels import ChannelError
from domain.notifications.render import check_all_translations, placeholders
from domain.notifications.templates_cy import PLACEHOLDER_MARK
from domain.notifications.wording import id_words, replace_ids
from tests.notifications.support import PP_DETAILS, RP_DETAILS, variables_for

PARTIES = {"rp": RP_DETAILS, "pp": PP_DETAILS}
ROLES = {"rp": "receiving_parent", "pp": "paying_parent"}


def test_every_template_is_held_in_welsh_with_the_same_variables() -> None:
    assert set(WELSH) == set(TEMPLATES)
    check_all_translations()
    for name in TEMPLATES:
        assert placeholders(WELSH[name]) == placeholders(TEMPLATES[name]), name


def test_a_welsh_template_with_a_different_variable_is_refused_naming_both() -> None:
    english = TEMPLATES["payment_received"]
    welsh = Template("payment_received_cy", WELSH["payment_received"].subject,
                     WELSH["payment_received"].body.replace("{amount|money}", "{swm|money}"), WELSH["payment_received"].sms)
    with pytest.raises(TranslationMismatch) as error:
        check_translation(english, welsh)
    message = str(error.value)
    assert "'payment_received'" in message and "'payment_received_cy'" in message
    assert "swm|money" in message


def test_a_changed_format_is_a_different_variable_too() -> None:
    english = TEMPLATES["payment_received"]
    welsh = Template("payment_received", english.subject, english.body.replace("{amount|money}", "{amount}"), english.sms)
    with pytest.raises(TranslationMismatch, match="amount"):
        check_translation(english, welsh)


def test_placeholder_welsh_is_marked_and_listed_for_the_translator() -> None:
    translated = set(TEMPLATES) - set(AWAITING_TRANSLATION)
    assert translated, "no template holds a Welsh translation"
    for name in AWAITING_TRANSLATION:
        assert WELSH[name].body.startswith(PLACEHOLDER_MARK), name
    for name in translated:
        assert PLACEHOLDER_MARK not in WELSH[name].body, name
        assert WELSH[name].body != TEMPLATES[name].body, name


@pytest.mark.parametrize("channel", ["letter", "email", "sms"])
def test_a_welsh_speaker_gets_welsh_on_every_channel(channel) -> None:
    message = render_for_recipient("payment_received", channel, variables_for("payment_received", "C1"), "rp",
                                   PARTIES, language="cy")
    assert message.language == "cy" and message.language_note == ""
    assert "28 Ebrill 2026" in message.body and "£364.52" in message.body
    assert "April" not in message.body
    if channel != "sms":
        assert message.body.startswith("Annwyl Alex Receiver")


def test_both_languages_put_welsh_first_then_english() -> None:
    message = render_for_recipient("case_closed", "email", variables_for("case_closed", "C1"), "rp", PARTIES,
                                   language="both")
    assert message.language == "cy+en"
    assert message.subject == f"{WELSH['case_closed'].subject} / {TEMPLATES['case_closed'].subject}"
    assert message.body.index("Annwyl") < message.body.index("Dear")
    assert "1 Ionawr 2030" in message.body and "1 January 2030" in message.body


def test_a_language_without_templates_falls_back_to_english_and_says_so() -> None:
    message = render_for_recipient("case_closed", "letter", variables_for("case_closed", "C1"), "rp", PARTIES,
                                   language="pl")
    assert message.language == "en"
    assert message.body.startswith("Dear Alex Receiver")
    assert "'pl'" in message.language_note and "English" in message.language_note


def test_a_preference_that_is_no_language_is_refused() -> None:
    with pytest.raises(ChannelError, match="language"):
        ContactPreferences(language="Welsh please")
    with pytest.raises(ChannelError, match="accessible format"):
        ContactPreferences(accessible_format="giant")
    assert ContactPreferences(language="cy", accessible_format="large_print").language == "cy"


# --- words, not ids ------------------------------------------------------------------------------

EXPLANATION = [
    "Shared care: rp-demo-0002: nights a year with the paying parent (c-1 0 nights, c-2 110 nights) give an "
    "average reduction of 1/7: £140.00 × 6/7 = £120.00.",
    "Collect & Pay: rp-demo-0002: £140.57 + fee £28.11 = £168.68 paid, £140.57 − fee £5.62 = £134.95 received.",
    "Weekly child maintenance payable to rp-demo-0002: £140.57.",
]
CHILDREN = {"c-1": ChildRecord("c-1", "Aled", "2016-03-03"), "c-2": ChildRecord("c-2", "", "2018-11-20")}
CASE_ROLES = {"rp-demo-0002": "receiving_parent", "pp-demo-0001": "paying_parent"}


def _figures(text: str) -> list[str]:
    return re.findall(r"£[\d,]+\.\d\d|\d+/\d+|\b\d+ nights", text)


def test_the_explanation_names_children_and_parents_in_words_and_keeps_every_figure() -> None:
    words = id_words(CASE_ROLES, CHILDREN, safeguarded=False)
    worded = [replace_ids(line, words) for line in EXPLANATION]
    text = "\n".join(worded)
    assert "rp-demo-0002" not in text and "c-1" not in text and "c-2" not in text
    assert "the receiving parent" in text
    assert "Aled 0 nights" in text
    assert "your child born 20 November 2018 110 nights" in text
    for original, changed in zip(EXPLANATION, worded):
        assert _figures(original) == _figures(changed)
    assert worded[2] == "Weekly child maintenance payable to the receiving parent: £140.57."


def test_an_id_starting_a_sentence_is_capitalised_and_longer_ids_are_left_whole() -> None:
    words = id_words({"rp-1": "receiving_parent"}, {"c-1": ChildRecord("c-1", "", "2016-03-03")}, False)
    assert replace_ids("rp-1: £5.00. c-1 stays; c-10 and xc-1 do not change.", words) == \
        "The receiving parent: £5.00. Your child born 3 March 2016 stays; c-10 and xc-1 do not change."


def test_a_safeguarded_case_names_children_by_date_of_birth_only() -> None:
    words = id_words(CASE_ROLES, CHILDREN, safeguarded=True)
    assert words["c-1"] == "your child born 3 March 2016"


def test_letters_use_the_words_and_never_the_other_parents_name() -> None:
    variables = {**variables_for("calculation_decision", "C1"), "explanation": EXPLANATION}
    parties = {"rp-demo-0002": RP_DETAILS, "pp-demo-0001": PP_DETAILS}
    for safeguarded in (False, True):
        for recipient, other in (("rp-demo-0002", "pp-demo-0001"), ("pp-demo-0001", "rp-demo-0002")):
            message = render_for_recipient("calculation_decision", "letter", variables, recipient, parties,
                                           roles=CASE_ROLES, children=CHILDREN, safeguarded=safeguarded)
            assert "rp-demo-0002" not in message.body and "c-2" not in message.body
            assert parties[other]["full_name"] not in message.body
            assert ("Aled" in message.body) is not safeguarded
            for figure in _figures("\n".join(EXPLANATION)):
                assert figure in message.body
