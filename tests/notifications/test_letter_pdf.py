"""Letters as a parent reads them: every character drawn from the embedded font, the text read back
from the PDF equal to what was meant, large print, the address block inside Notify's envelope
window (from the PDF's own coordinates), and a PNG of each letter's first page for a person."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from cms.config import REPO_ROOT
from domain.notifications import TEMPLATES, render_for_recipient
from services.notifications.letters import (
    ADDRESS_LINE_HEIGHT,
    SPEC,
    MissingGlyph,
    address_window_problems,
    check_glyphs,
    font_path,
    render_letter_pdf,
)
from tests.notifications.support import PP_DETAILS, RP_DETAILS, variables_for

# A person looks at these: the first page of each letter type, per language and in large print.
OUTPUT = REPO_ROOT / ".data" / "test-output" / "letters"
MM = 72 / 25.4      # PDF points per millimetre

ADVERSARIAL_RECIPIENT = {
    **RP_DETAILS, "full_name": "Siân O’Brien-Llŷr Ŵyn Öztürk-Ffrancon",
    "address": "Tŷ’r Ŵyn, 1 Heol y Bryn\nLlanfair-ym-Muallt", "postcode": "LD2 3AB",
}
ADVERSARIAL_VALUES = {
    "explanation": ["Collect & Pay: the receiving parent: £140.57 − fee £5.62 = £134.95 received.",
                    "Shared care: Zoë 0 nights, your child born 3 March 2016 110 nights give 1/7: £1,234.56 × 6/7.",
                    "It’s “fair” — isn’t it? Façade, naïve, crème brûlée; ŵ ŷ Ŵ Ŷ â ê î ô û."],
    "reason": "the parents’ agreement — “family-based” — replaced it",
    "outcome": "no change (the new income is less than 25% different)",
    "step": "deduction from earnings order – Llŷr’s employer",
}
LANGUAGES = ["en", "cy", "both"]


def _letter(template: str, language: str, large_print: bool = False) -> tuple[str, bytes, tuple[str, ...], str]:
    variables = {**variables_for(template, "C-2026-0001"), **{k: v for k, v in ADVERSARIAL_VALUES.items()
                                                              if k in variables_for(template, "C1")}}
    parties = {"rp": ADVERSARIAL_RECIPIENT, "pp": PP_DETAILS}
    message = render_for_recipient(template, "letter", variables, "rp", parties, language=language)
    pdf = render_letter_pdf(message.address_lines, message.subject, message.body, "C-2026-0001",
                            date(2026, 3, 2), large_print=large_print, language=message.language)
    return message.subject + "\n" + message.body, pdf, message.address_lines, message.language


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _squeezed(text: str) -> str:
    """Text without whitespace: line wrapping moves spaces and breaks, never characters."""
    return re.sub(r"\s+", "", text)


def _embedded_font_characters(pdf: bytes) -> set[str]:
    """The characters the PDF's embedded fonts map glyphs to (their ToUnicode tables)."""
    found: set[str] = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources: Any = page["/Resources"].get_object()
        for font in resources["/Font"].get_object().values():
            font = font.get_object()
            assert font["/Subtype"] == "/Type0", "a letter must embed its font, not use a core font"
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor, "the TrueType font is not embedded"
            cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
            for hexes in re.findall(r"<[0-9A-Fa-f]+>\s*<([0-9A-Fa-f]+)>", cmap):
                found.add(bytes.fromhex(hexes).decode("utf-16-be"))
    return found


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_character_is_in_the_font_and_reads_back_as_written(template, language) -> None:
    intended, pdf, address, used = _letter(template, language)
    font_map = set(map(chr, TTFont(font_path(), lazy=True).getBestCmap()))
    drawn = {c for c in intended + "".join(address) if not c.isspace()}
    assert drawn - font_map == set(), f"not in the font: {sorted(drawn - font_map)}"
    assert {"ŷ", "Ŵ", "’", "ü", "â"} <= drawn
    assert drawn <= _embedded_font_characters(pdf) | {" "}
    text = _pdf_text(pdf)
    assert "?" not in text.replace("isn’t it?", "")
    for line in address:
        assert line in text
    assert _squeezed(intended) in _squeezed(text)


def test_the_minus_sign_and_welsh_letters_survive_where_the_core_font_printed_a_question_mark() -> None:
    body = "£140.57 − fee £5.62 = £134.95 received. Ŵ ŵ Ŷ ŷ"
    pdf = render_letter_pdf(("Alex", "1 Road", "AB1 2CD"), "Fees", body, "C1", date(2026, 3, 2))
    assert body in _pdf_text(pdf)


def test_a_character_the_font_cannot_draw_is_refused_not_printed_as_a_question_mark() -> None:
    with pytest.raises(MissingGlyph, match="U\\+4E2D"):
        check_glyphs("child maintenance 中")


def _font_sizes_and_alignment(pdf: bytes) -> tuple[set[float], set[float]]:
    """(font sizes used for body text, word spacings) from the first page's content stream."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    contents = page.get_contents()
    assert contents is not None
    content = contents.get_data().decode("latin-1")
    sizes = {float(size) for size in re.findall(r"/F\d+\s+([\d.]+)\s+Tf", content)}
    spacing = {float(value) for value in re.findall(r"([-\d.]+)\s+Tw", content)}
    return sizes, spacing


def test_large_print_is_16pt_or_more_and_left_aligned() -> None:
    _, standard, _, _ = _letter("calculation_decision", "en")
    _, large, _, _ = _letter("calculation_decision", "en", large_print=True)
    standard_sizes, _ = _font_sizes_and_alignment(standard)
    large_sizes, spacing = _font_sizes_and_alignment(large)
    assert max(standard_sizes) < 16
    # The address block keeps the window's size; everything else is 16pt or more.
    assert min(large_sizes - {10.0}) >= 16
    assert spacing <= {0.0}, "justified text (word spacing) in a large-print letter"
    assert len(PdfReader(io.BytesIO(large)).pages) >= len(PdfReader(io.BytesIO(standard)).pages)


def _address_positions(pdf: bytes, address: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """(line, x mm from the left, baseline mm from the top) of each address line on page one."""
    found: list[tuple[str, float, float]] = []
    height = float(PdfReader(io.BytesIO(pdf)).pages[0].mediabox.height)

    def visit(text, cm, tm, font, size):
        x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
        if text.strip() in address:
            found.append((text.strip(), x / MM, (height - y) / MM))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("large_print", [False, True])
def test_the_address_block_sits_inside_the_envelope_window(language, large_print) -> None:
    _, pdf, address, _ = _letter("calculation_decision", language, large_print)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert (round(float(page.mediabox.width) / MM), round(float(page.mediabox.height) / MM)) == (210, 297)
    positions = _address_positions(pdf, address)
    assert [line for line, _, _ in positions] == list(address)
    for line, x, baseline in positions:
        assert SPEC.address_left <= x <= SPEC.address_left + SPEC.address_width, line
        top_of_text = baseline - ADDRESS_LINE_HEIGHT
        assert SPEC.address_top - 0.5 <= top_of_text and baseline <= SPEC.address_top + SPEC.address_height, line
    assert len(PdfReader(io.BytesIO(pdf)).pages) <= SPEC.max_pages


def test_an_address_that_cannot_fit_the_window_is_named() -> None:
    too_many = {**RP_DETAILS, "address": "\n".join(f"Line {n}" for n in range(1, 8))}
    assert [field for field, _ in address_window_problems(too_many)] == ["address"]
    too_long = {**RP_DETAILS, "address": "Flat 2, " + "Very Long Building Name " * 4 + "\nTown"}
    assert [field for field, _ in address_window_problems(too_long)] == ["address"]
    long_name = {**RP_DETAILS, "full_name": "Alexandra " * 8}
    assert [field for field, _ in address_window_problems(long_name)] == ["full_name"]
    assert address_window_problems(RP_DETAILS) == []
    assert address_window_problems(ADVERSARIAL_RECIPIENT) == []
    assert address_window_problems({"email": "a@example.org"}) == []


def test_first_pages_as_pictures_for_a_person_to_look_at() -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian package poppler-utils) is not installed, so no page images were made; "
                    "the address position is still checked from the PDF's coordinates")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    made = []
    for template in sorted(TEMPLATES):
        for language in LANGUAGES:
            for large_print in (False, True) if language == "en" else (False,):
                _, pdf, _, _ = _letter(template, language, large_print)
                stem = OUTPUT / f"{template}-{language}{'-large-print' if large_print else ''}"
                stem.with_suffix(".pdf").write_bytes(pdf)
                subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                                str(stem.with_suffix(".pdf")), str(stem)], check=True, timeout=60)
                made.append(Path(f"{stem}.png"))
    assert all(path.stat().st_size > 0 for path in made)
    assert len(made) == len(TEMPLATES) * (len(LANGUAGES) + 1)
