"""Letters as PDF documents (fpdf2, core Helvetica font, so no font files are needed).

The core fonts cover Latin-1, which includes '£'; typographic characters outside it are
replaced by their plain equivalents so a letter never fails to render.
"""

from __future__ import annotations

from datetime import date

from fpdf import FPDF

_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                        "\u2014": "-", "\u2026": "...", "\u00a0": " "})


def latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def render_letter_pdf(address_lines: tuple[str, ...] | list[str], subject: str, body: str,
                      reference: str, dated: date) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(latin1(subject))
    pdf.set_author("Child Maintenance Service")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "Child Maintenance Service", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, latin1(f"Reference: {reference}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"Date: {dated.day} {dated:%B %Y}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("Helvetica", "", 11)
    for line in address_lines:
        pdf.cell(0, 5.5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 6, latin1(subject), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 5.5, latin1(body), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
