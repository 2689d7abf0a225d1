from dataclasses import dataclass
from typing import Any

from domain.safeguarding import REDACTED, Viewer, protected_values, redact_for_viewer


@dataclass(frozen=True)
class Party:
    party_id: str
    full_name: str
    address: str
    phone: str


def test_other_party_never_sees_protected_fields_in_nested_records() -> None:
    record: dict[str, Any] = {"paying_parent": {"full_name": "A", "address": "1 Safe St", "employer": "Acme"},
              "letters": [{"phone": "07700900000"}]}
    redacted = redact_for_viewer(record, "rp", Viewer(party_id="pp"))
    assert protected_values(record) == {"1 Safe St", "Acme", "07700900000"}
    assert protected_values(redacted) == {REDACTED}
    assert record["paying_parent"]["address"] == "1 Safe St"  # input untouched


def test_owner_and_staff_see_their_details() -> None:
    party = Party("rp", "A", "1 Safe St", "077")
    assert redact_for_viewer(party, "rp", Viewer(party_id="rp")) == party
    assert redact_for_viewer(party, "rp", Viewer(staff_id="cw-1", reason="review")) == party
    assert redact_for_viewer(party, "rp", Viewer(party_id="pp")).address == REDACTED
    assert redact_for_viewer(party, "rp", Viewer()).phone == REDACTED
