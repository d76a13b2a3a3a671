"""Whole numbers typed into a URL's query string: ids and sequence cursors.

One rule for every page, poll and socket: ASCII digits only ("²".isdigit() and "٣".isdigit() are true, and
int() takes " 7" and "1_000"), and no larger than a database integer holds. A bigger number is no row rather
than a database error: PostgreSQL refuses it as out of range, and SQLite's driver raises OverflowError.
"""

MAX_DB_INT = 2**63 - 1  # PostgreSQL bigint, SQLite INTEGER


def whole_number(text, limit=MAX_DB_INT):
    """`text` as an int; ValueError unless it is 0..limit written in ASCII digits."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > limit:
        raise ValueError(f"Not a whole number from 0 to {limit}: {text[:20]!r}")
    return int(text)
