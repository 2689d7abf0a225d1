"""The tests read letters back with `support.pdf_text`; if it lost a page's text, every leak check
built on it would pass on nothing. These tests pin it on letters whose compressed streams end in
the bytes that broke the first version (a carriage return before "endstream")."""
import random
import string

from fpdf import FPDF

from tests.notifications.support import pdf_text


def _letter(body: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, body)
    return bytes(pdf.output())


def _letters_whose_stream_ends_in_carriage_return(wanted: int) -> list[tuple[str, bytes]]:
    # The checksum ending the stream barely moves for a one-digit change, so vary a whole line.
    chooser = random.Random(2026)
    found = []
    for number in range(5_002):
        noise = "".join(chooser.choices(string.ascii_letters, k=40))
        body = f"Dear Alex Receiver\nReference {number:06d}\n{noise}"
        data = _letter(body)
        if b"\r\nendstream" in data:
            found.append((body, data))
        if len(found) == wanted:
            break
    return found


def test_every_line_of_a_letter_is_read_back() -> None:
    body = "Dear Alex Receiver\n1 High Street\nPV9 9OR"
    text = pdf_text(_letter(body))
    assert all(line in text for line in body.split("\n"))


def test_a_stream_ending_in_a_carriage_return_is_read_whole() -> None:
    letters = _letters_whose_stream_ends_in_carriage_return(3)
    assert letters, "no letter with a stream ending in a carriage return was produced"
    for body, data in letters:
        text = pdf_text(data)
        assert all(line in text for line in body.split("\n")), body
