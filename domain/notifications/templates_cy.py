"""Every message of `templates.py` in Welsh, as data beside the English (Welsh Language Act 1993:
a parent who asks for Welsh correspondence gets it).

Each Welsh template uses exactly the variables of its English one: `check_translation` refuses
a pair that differs, naming both, and runs over every template when this module loads, so a
mismatched translation cannot ship.

Where no translation is held yet, the Welsh text is the English text under a visible Welsh
marker (`placeholder`), and the template is named in `AWAITING_TRANSLATION`: that tuple is the
one list for the translator, so the gap shows instead of passing silently. Variable values that
are prose (a change's outcome, a payment method in words, the calculation explanation) come from
the case in English; they are on the translator's list too (`ENGLISH_ONLY_VALUES`).
"""

from __future__ import annotations

from domain.notifications.templates import TEMPLATES, Template

PLACEHOLDER_MARK = "[Cyfieithiad Cymraeg i ddod / Welsh translation to follow]"

_FOOTER = (
    "\n\nOs oes unrhyw beth yma yn anghywir, rhowch wybod i ni o fewn 30 diwrnod. Gallwch ateb ar-lein, "
    "neu ein ffonio ar y rhif ar ein gwefan.\n\nGwasanaeth Cynhaliaeth Plant\n"
    "Cyfeirnod yr achos: {case_reference}"
)

# The variables whose values are English prose written by the case, not by a template.
ENGLISH_ONLY_VALUES = ("explanation", "frequency_words", "how_paid", "payment_note", "change_kind", "outcome",
                       "outcome_reason", "switch_reason", "step", "step_detail", "reason")


def placeholder(english: Template) -> Template:
    """The English text under the Welsh marker, until a translation is held."""
    return Template(english.name, f"{PLACEHOLDER_MARK} {english.subject}",
                    f"{PLACEHOLDER_MARK}\n\n{english.body}", f"{PLACEHOLDER_MARK} {english.sms}")


_TRANSLATED: tuple[Template, ...] = (
    Template(
        "application_received",
        "Rydym wedi cael eich cais",
        "Annwyl {recipient.full_name},\n\nDiolch am wneud cais i'r Gwasanaeth Cynhaliaeth Plant ar "
        "{received_on|date}. Byddwn nawr yn cysylltu â'r rhiant arall ac yn cyfrifo faint o gynhaliaeth "
        "plant y dylid ei thalu. Byddwn yn ysgrifennu atoch eto pan fyddwn wedi gwneud hyn.\n\n"
        "Nid oes angen i chi gysylltu â'r rhiant arall eich hun." + _FOOTER,
        "CMS: cawsom eich cais ar {received_on|date}. Cyf {case_reference}. Byddwn yn ysgrifennu atoch "
        "eto cyn bo hir.",
    ),
    Template(
        "notice_to_paying_parent",
        "Mae rhywun wedi gwneud cais am gynhaliaeth plant",
        "Annwyl {recipient.full_name},\n\nMae cais am gynhaliaeth plant wedi'i wneud ar gyfer plant yr "
        "ydym yn deall eich bod yn rhiant iddynt. Byddwn yn cyfrifo'r hyn y dylech ei dalu gan "
        "ddefnyddio eich incwm gan Gyllid a Thollau EF. Bydd y cyfrifiad yn dod i rym o "
        "{effective_date|date}.\n\nRhowch wybod i ni o fewn 14 diwrnod os yw eich incwm wedi newid 25% "
        "neu fwy, neu os yw'r plant yn aros gyda chi dros nos." + _FOOTER,
        "CMS: mae cais am gynhaliaeth plant yn eich enwi. Cyf {case_reference}. Edrychwch ar eich "
        "llythyr neu eich cyfrif o fewn 14 diwrnod.",
    ),
    Template(
        "calculation_decision",
        "Eich cyfrifiad cynhaliaeth plant",
        "Annwyl {recipient.full_name},\n\nRydym wedi cyfrifo'r gynhaliaeth plant i'w thalu o "
        "{effective_date|date}: {weekly_amount|money} yr wythnos.\n\nSut y gwnaethom ei chyfrifo:\n"
        "{explanation|lines}" + _FOOTER,
        "CMS: mae'r gynhaliaeth plant yn {weekly_amount|money} yr wythnos o {effective_date|date}. "
        "Cyf {case_reference}. Mae eich llythyr yn esbonio sut y gwnaethom ei chyfrifo.",
    ),
    Template(
        "payment_received",
        "Taliad wedi dod i law",
        "Annwyl {recipient.full_name},\n\nCawsom daliad o {amount|money} ar {received_on|date}. "
        "Diolch." + _FOOTER,
        "CMS: cawsom daliad o {amount|money} ar {received_on|date}. Cyf {case_reference}.",
    ),
    Template(
        "payment_missed",
        "Mae taliad wedi'i fethu",
        "Annwyl {recipient.full_name},\n\nNid yw'r taliad o {amount|money} oedd yn ddyledus ar "
        "{due_on|date} wedi cyrraedd. Y swm sy'n ddyledus nawr yw {arrears|money}.\n\nTalwch ef, neu "
        "cysylltwch â ni o fewn 7 diwrnod i drefnu sut y byddwch yn talu. Os na fyddwn yn clywed "
        "gennych, efallai y byddwn yn cymryd camau i'w gasglu." + _FOOTER,
        "CMS: nid yw'r taliad o {amount|money} oedd yn ddyledus {due_on|date} wedi cyrraedd. Talwch neu "
        "cysylltwch â ni o fewn 7 diwrnod. Cyf {case_reference}.",
    ),
    Template(
        "annual_review",
        "Eich adolygiad blynyddol",
        "Annwyl {recipient.full_name},\n\nRydym wedi adolygu eich cynhaliaeth plant, fel y gwnawn bob "
        "blwyddyn. O {effective_date|date} ymlaen y swm yw {weekly_amount|money} yr wythnos.\n\n"
        "Sut y gwnaethom ei chyfrifo:\n{explanation|lines}" + _FOOTER,
        "CMS: ar ôl yr adolygiad blynyddol, mae'r gynhaliaeth plant yn {weekly_amount|money} yr wythnos "
        "o {effective_date|date}. Cyf {case_reference}.",
    ),
    Template(
        "case_closed",
        "Mae eich achos cynhaliaeth plant wedi cau",
        "Annwyl {recipient.full_name},\n\nCaeodd eich achos ar {closed_on|date} oherwydd {reason}.\n\n"
        "Gellir casglu unrhyw swm sy'n dal yn ddyledus." + _FOOTER,
        "CMS: caeodd eich achos ar {closed_on|date}. Cyf {case_reference}.",
    ),
)

# The translator's list: templates whose Welsh is the English under PLACEHOLDER_MARK.
AWAITING_TRANSLATION: tuple[str, ...] = tuple(sorted(
    name for name in TEMPLATES if name not in {t.name for t in _TRANSLATED}))

WELSH: dict[str, Template] = {
    **{name: placeholder(TEMPLATES[name]) for name in AWAITING_TRANSLATION},
    **{t.name: t for t in _TRANSLATED},
}
