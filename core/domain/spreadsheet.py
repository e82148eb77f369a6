"""Text for spreadsheet cells that a spreadsheet shows rather than runs."""

from __future__ import annotations


def csv_cell(value: object) -> str:
    """``value`` as CSV text that a spreadsheet shows rather than runs."""
    text = str(value)
    # Spreadsheets run cells starting with these as formulas; a leading quote keeps them text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
