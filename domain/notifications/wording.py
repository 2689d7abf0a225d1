"""Words, not ids: a letter names people the way a parent knows them.

The calculation's explanation is written once for both parents with the case's internal ids
(a receiving parent's party id, a child's id). Before a template sees it, each id becomes words
for the addressee: a parent by role ("the receiving parent", "the paying parent"), a child by
the name the application gave, or "your child born 3 March 2016" where no name is held.

On a safeguarded case a child is always named by date of birth: a changed name can be exactly
what keeps a family from being found, and a role never names the other parent.

Only ids that contain a letter are replaced, so no figure of the explanation can be mistaken for
an id and lost: the explanation keeps every amount, number of nights and fraction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

ROLE_WORDS = {
    "en": {"receiving_parent": "the receiving parent", "paying_parent": "the paying parent"},
    "cy": {"receiving_parent": "y rhiant sy'n derbyn", "paying_parent": "y rhiant sy'n talu"},
}
WELSH_MONTHS = ("Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf", "Awst", "Medi",
                "Hydref", "Tachwedd", "Rhagfyr")
ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                  "October", "November", "December")


@dataclass(frozen=True)
class ChildRecord:
    child_id: str
    name: str = ""
    date_of_birth: str = ""      # ISO date


def long_date(day: date, language: str = "en") -> str:
    months = WELSH_MONTHS if language == "cy" else ENGLISH_MONTHS
    return f"{day.day} {months[day.month - 1]} {day.year}"


def child_words(child: ChildRecord, safeguarded: bool, language: str = "en") -> str:
    if child.name.strip() and not safeguarded:
        return child.name.strip()
    try:
        born = date.fromisoformat(child.date_of_birth)
    except ValueError:
        return "eich plentyn" if language == "cy" else "your child"
    if language == "cy":
        return f"eich plentyn a anwyd ar {long_date(born, 'cy')}"
    return f"your child born {long_date(born)}"


def id_words(roles: Mapping[str, str], children: Mapping[str, ChildRecord], safeguarded: bool,
             language: str = "en") -> dict[str, str]:
    """Each id a letter may meet -> the words for it."""
    role_words = ROLE_WORDS.get(language, ROLE_WORDS["en"])
    words = {party_id: role_words[role] for party_id, role in roles.items() if role in role_words}
    words.update({child_id: child_words(child, safeguarded, language) for child_id, child in children.items()})
    return {identifier: text for identifier, text in words.items() if re.search(r"[A-Za-z]", identifier)}


def replace_ids(text: str, words: Mapping[str, str]) -> str:
    if not words:
        return text
    # Longest first, and never inside a longer id ("c-1" is not in "c-10" or "rp-c-1").
    alternatives = "|".join(re.escape(identifier) for identifier in sorted(words, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")

    def substitute(match: re.Match[str]) -> str:
        text_for_id = words[match.group(0)]
        starts_sentence = not text[:match.start()].strip() or text[:match.start()].rstrip().endswith(".")
        return text_for_id[:1].upper() + text_for_id[1:] if starts_sentence else text_for_id

    return pattern.sub(substitute, text)


def worded(value: Any, words: Mapping[str, str]) -> Any:
    """`value` with ids replaced in its text (a string, or the strings of a list or record)."""
    if isinstance(value, str):
        return replace_ids(value, words)
    if isinstance(value, list):
        return [worded(item, words) for item in value]
    if isinstance(value, dict):
        return {key: worded(item, words) for key, item in value.items()}
    return value
