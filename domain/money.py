"""Money helpers: integer pence, exact fractions, explicit half-up rounding.

Money is never a float. Amounts are ``int`` pence; intermediate values that are not whole
pence are :class:`fractions.Fraction`. Rounding is always "half up" as in the 2003-scheme
and NI rounding rules that the 2012 scheme follows (docs/rules.md): half a penny or
more rounds up, less is dropped.
"""

from __future__ import annotations

from fractions import Fraction

PENCE_PER_POUND = 100


def round_half_up(value: Fraction | int) -> int:
    """Round an exact amount of pence to a whole penny, halves up (towards +infinity)."""
    value = Fraction(value)
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in pure integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return (2 * numerator + denominator) // (2 * denominator)


def round_to_pound_half_up(pence: Fraction | int) -> int:
    """Round an exact amount of pence to a whole pound (50p rounds up); returns pence."""
    return round_half_up(Fraction(pence) / PENCE_PER_POUND) * PENCE_PER_POUND


def format_pence(pence: Fraction | int) -> str:
    """'£1,234.56' for letters; non-whole pence are shown to 4 decimal places."""
    value = Fraction(pence)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value.denominator == 1:
        pounds, pennies = divmod(value.numerator, PENCE_PER_POUND)
        return f"{sign}£{pounds:,}.{pennies:02d}"
    ten_thousandths = round_half_up(value * 100)  # pence → 1/10,000 of a pound
    pounds, rest = divmod(ten_thousandths, 10_000)
    return f"{sign}£{pounds:,}.{rest:04d}"


def format_percent(rate: Fraction) -> str:
    """A fraction as a percentage for letters: Fraction(141, 1000) -> '14.1%'."""
    percent = rate * 100
    if percent.denominator == 1:
        return f"{percent.numerator}%"
    tenths = round_half_up(percent * 10)
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth}%"
