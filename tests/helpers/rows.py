"""A row a test's query must return: when it is missing the test fails saying which query came back
empty, rather than with a TypeError on None a line later."""

from typing import TypeVar

Row = TypeVar("Row")


def required_row(row: Row | None, what: str) -> Row:
    """`row` (a cursor's fetchone()), failing the test when the query returned no row; `what` names
    the row the test expected."""
    assert row is not None, f"no row: {what}"
    return row
