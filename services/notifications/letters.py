"""Letters as PDF documents (fpdf2) that GOV.UK Notify can print as precompiled letters.

The font: Lato (SIL Open Font Licence 1.1), installed from the `fontpkg-lato` package pinned in
requirements.lock and embedded (subset) in every letter, so every character a letter
uses is drawn: the pound and minus signs, curly apostrophes, accents, and the Welsh ŵ and ŷ.
A character the font lacks is refused (`MissingGlyph`) rather than printed as "?".

The page follows Notify's letter specification for precompiled letters (constants below): A4,
nothing in the 15 mm side margins or the 5 mm top and bottom borders, the recipient's address
(3 to 7 lines, the last the postcode) inside the envelope window area and nothing else there,
and at most 10 pages. `address_window_problems` refuses an address that cannot fit the window
before it is stored, so a letter never fails at the printer.

Large print (a party's accessible format): body text at 16pt and over, left-aligned; no text in
any letter is justified, since uneven word gaps are harder to read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import OPTIMIZE_FONT_SPEED
from fpdf import FPDF
from fpdf.fonts import TTFFont

from domain.notifications.render import postal_address_lines
from domain.notifications.wording import long_date


@dataclass(frozen=True)
class LetterSpecification:
    """GOV.UK Notify's printable-letter rules, in millimetres from the page's top-left corner."""

    page_width: float = 210.0
    page_height: float = 297.0
    side_margin: float = 15.0              # no content nearer the left or right edge
    top_bottom_border: float = 5.0         # no content nearer the top or bottom edge
    address_left: float = 24.6             # the envelope window's address area
    address_top: float = 39.5
    address_width: float = 95.96
    address_height: float = 26.8
    address_min_lines: int = 3
    address_max_lines: int = 7
    max_pages: int = 10


SPEC = LetterSpecification()
FONT_FAMILY = "Lato"
ADDRESS_FONT_SIZE = 10.0                   # 7 lines at 3.8 mm fit the window's 26.8 mm
ADDRESS_LINE_HEIGHT = 3.8
_ADDRESS_INSET = 0.5                       # clear of the window's edge
MARGIN = 20.0                              # our margins, inside Notify's


@dataclass(frozen=True)
class TextStyle:
    body_size: float
    heading_size: float
    line_height: float


STANDARD = TextStyle(body_size=11, heading_size=12, line_height=5.5)
LARGE_PRINT = TextStyle(body_size=16, heading_size=18, line_height=8.0)


class LetterError(ValueError):
    """A letter that cannot be printed as asked; the text says why."""


class MissingGlyph(LetterError):
    def __init__(self, characters: set[str]):
        self.characters = characters
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(characters))
        super().__init__(f"the letter font has no glyph for {shown}")


class TooManyPages(LetterError):
    pass


# What a letter in English or Welsh can contain: Basic Latin, Latin-1 (£, accents), Latin
# Extended-A (ŵ, ŷ), typographic punctuation (curly quotes, dashes, ellipsis), the euro sign and
# the minus sign.
LETTER_CHARACTERS = "U+0020-007E,U+00A0-017F,U+2010-2027,U+20AC,U+2212"


def packaged_font(style: str = "") -> Path:
    """Lato as its package ships it: Regular, or Bold for style 'B'."""
    import fontpkg_lato

    return Path(fontpkg_lato.__file__).parent / "files" / ("Lato-Bold.ttf" if style == "B" else "Lato-Regular.ttf")


@cache
def font_path(style: str = "") -> Path:
    """The face letters embed: the packaged Lato cut down to LETTER_CHARACTERS without its
    layout tables (kerning, ligatures), made once per machine in the cache folder. The full font
    takes most of a second to load and subset per letter; this one takes milliseconds."""
    from fontTools import subset

    source = packaged_font(style)
    digest = hashlib.sha256(source.read_bytes() + LETTER_CHARACTERS.encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cms-letter-fonts"
    target = folder / f"{source.stem}-{digest}.ttf"
    if target.exists():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:                     # no writable home (a locked-down container): a temporary folder
        folder = Path(tempfile.gettempdir()) / f"cms-letter-fonts-{os.getuid()}"
        target = folder / target.name
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
    options = subset.Options()
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern"]
    options.name_IDs = ["*"]            # keeps the copyright and licence records (OFL)
    options.notdef_outline = True
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=subset.parse_unicodes(LETTER_CHARACTERS))
    subsetter.subset(font)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".ttf")
    os.close(handle)
    subset.save_font(font, temporary, options)
    os.replace(temporary, target)       # atomic: a letter never sees half a font
    return target


@cache
def font_characters() -> frozenset[str]:
    """Every character both embedded faces can draw (their Unicode character maps)."""
    from fontTools.ttLib import TTFont

    maps = [set(TTFont(font_path(style), lazy=True).getBestCmap()) for style in ("", "B")]
    return frozenset(chr(code) for code in set.intersection(*maps))


def check_glyphs(*texts: str) -> None:
    missing = {character for text in texts for character in text
               if not character.isspace() and character not in font_characters()}
    if missing:
        raise MissingGlyph(missing)


def _new_document() -> FPDF:
    pdf = FPDF(format="A4", unit="mm")
    pdf.add_font(FONT_FAMILY, "", font_path(""))
    pdf.add_font(FONT_FAMILY, "B", font_path("B"))
    for font in pdf.fonts.values():
        if not isinstance(font, TTFFont):
            continue
        # Each letter embeds a subset of the face; writing it the fast way (glyph outlines copied,
        # not re-packed to save a few bytes) takes half the time.
        font.ttfont.cfg[OPTIMIZE_FONT_SPEED] = True
        font.ttfont.recalcBBoxes = False
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    return pdf


@cache
def _measuring_document() -> FPDF:
    pdf = _new_document()
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, "", ADDRESS_FONT_SIZE)
    return pdf


def address_window_problems(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Why a party's postal address cannot be printed in the envelope window, as (field, problem)
    pairs; none for an address that fits, or for a party with no postal address."""
    if not str(details.get("address", "")).strip():
        return []
    lines = postal_address_lines(details)
    problems: list[tuple[str, str]] = []
    if len(lines) > SPEC.address_max_lines:
        problems.append(("address", f"has {len(lines)} lines with the name and postcode; the envelope window "
                                    f"holds {SPEC.address_max_lines}"))
    if len(lines) < SPEC.address_min_lines:
        problems.append(("address", f"has {len(lines)} lines with the name and postcode; a letter needs at "
                                    f"least {SPEC.address_min_lines}"))
    try:
        check_glyphs(*lines)
    except MissingGlyph as error:
        problems.append(("address", str(error)))
        return problems
    widest = SPEC.address_width - 2 * _ADDRESS_INSET
    measure = _measuring_document()
    fields = {"full_name": str(details.get("full_name", "")).strip(), "postcode": str(details.get("postcode", "")).strip()}
    for line in lines:
        if measure.get_string_width(line) > widest:
            field = next((name for name, value in fields.items() if value and value == line), "address")
            problems.append((field, f"has a line too long for the envelope window ({len(line)} characters): "
                                    "split it over more lines or shorten it"))
    return problems


def render_letter_pdf(address_lines: tuple[str, ...] | list[str], subject: str, body: str,
                      reference: str, dated: date, large_print: bool = False, language: str = "en") -> bytes:
    """The letter: sender, the address in the window, reference and date beside it, then the
    subject and body. `language` 'cy' or 'cy+en' words the reference and date in Welsh too."""
    check_glyphs(subject, body, reference, *address_lines)
    style = LARGE_PRINT if large_print else STANDARD
    pdf = _new_document()
    pdf.set_title(subject)
    pdf.set_author("Child Maintenance Service")
    pdf.add_page()
    _sender(pdf, language, 18 if large_print else 14)
    _address_block(pdf, address_lines)
    below_window = SPEC.address_top + SPEC.address_height + 6
    if large_print:
        # Too wide beside the window at 16pt: under it, in the body's size, like the rest.
        pdf.set_xy(MARGIN, below_window)
        pdf.set_font(FONT_FAMILY, "", style.body_size)
        for line in _reference_lines(reference, dated, language):
            pdf.multi_cell(0, style.line_height, line, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    else:
        _reference_and_date(pdf, reference, dated, language)
        pdf.set_xy(MARGIN, below_window + 4)
    pdf.set_font(FONT_FAMILY, "B", style.heading_size)
    pdf.multi_cell(0, style.line_height, subject, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT_FAMILY, "", style.body_size)
    pdf.multi_cell(0, style.line_height, body, align="L", new_x="LMARGIN", new_y="NEXT")
    if pdf.page_no() > SPEC.max_pages:
        raise TooManyPages(f"the letter runs to {pdf.page_no()} pages; Notify prints at most {SPEC.max_pages}")
    return bytes(pdf.output())


def _sender(pdf: FPDF, language: str, size: float) -> None:
    pdf.set_xy(MARGIN, MARGIN)
    pdf.set_font(FONT_FAMILY, "B", size)
    sender = {"cy": "Gwasanaeth Cynhaliaeth Plant", "cy+en": "Gwasanaeth Cynhaliaeth Plant / Child Maintenance Service"}
    # Two lines at most at 18pt: still above the window.
    pdf.multi_cell(0, size * 0.4, sender.get(language, "Child Maintenance Service"), align="L",
                   new_x="LMARGIN", new_y="NEXT")


def _address_block(pdf: FPDF, address_lines: tuple[str, ...] | list[str]) -> None:
    """Inside the window area only: a line that would not fit was refused when it was stored."""
    pdf.set_font(FONT_FAMILY, "", ADDRESS_FONT_SIZE)
    left = SPEC.address_left + _ADDRESS_INSET
    for index, line in enumerate(address_lines[:SPEC.address_max_lines]):
        pdf.set_xy(left, SPEC.address_top + _ADDRESS_INSET + index * ADDRESS_LINE_HEIGHT)
        pdf.cell(SPEC.address_width - 2 * _ADDRESS_INSET, ADDRESS_LINE_HEIGHT, line)


def _reference_lines(reference: str, dated: date, language: str) -> list[str]:
    if language == "cy":
        return [f"Cyfeirnod: {reference}", f"Dyddiad: {long_date(dated, 'cy')}"]
    if language == "cy+en":
        return [f"Cyfeirnod / Reference: {reference}", f"Dyddiad: {long_date(dated, 'cy')}", f"Date: {long_date(dated)}"]
    return [f"Reference: {reference}", f"Date: {long_date(dated)}"]


def _reference_and_date(pdf: FPDF, reference: str, dated: date, language: str) -> None:
    """To the right of the window, so nothing but the address shows through it."""
    left = SPEC.address_left + SPEC.address_width + 8
    width = SPEC.page_width - MARGIN - left
    pdf.set_font(FONT_FAMILY, "", 9)
    pdf.set_xy(left, SPEC.address_top)
    for line in _reference_lines(reference, dated, language):
        pdf.set_x(left)
        pdf.multi_cell(width, 4.5, line, align="L", new_x="LEFT", new_y="NEXT")
