"""Text that an event or a row can hold. SQLite stores UTF-8, and a Python str may hold
lone surrogates that UTF-8 cannot: a byte of a file name that is not UTF-8 (os.fsdecode
maps it to U+DC80..U+DCFF), or a JSON escape like \\ud800 from a provider or a
result.json. sqlite3 and pydantic refuse such text with UnicodeEncodeError."""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without lone surrogates: a byte a file name smuggled in becomes `\\xNN` as
    backslashreplace writes it, any other surrogate `\\uXXXX`."""
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def lone_surrogate(value: Any) -> str | None:
    """The first string of a parsed JSON document (a key or a value, at any depth) that
    holds a lone surrogate, or None."""
    if isinstance(value, str):
        return value if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        parts: Any = (part for pair in value.items() for part in pair)
    elif isinstance(value, list):
        parts = value
    else:
        return None
    for part in parts:
        if (found := lone_surrogate(part)) is not None:
            return found
    return None


def storable_tree(value: Any) -> Any:
    """A parsed JSON document with every string (key or value) made storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable_tree(key): storable_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_tree(item) for item in value]
    return value
