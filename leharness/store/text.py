"""Text that an event or a row can hold. SQLite stores UTF-8, and a Python str may hold
lone surrogates that UTF-8 cannot: a byte of a file name that is not UTF-8 (os.fsdecode
maps it to U+DC80..U+DCFF), or a JSON escape like \\ud800 from a provider or a
result.json. sqlite3 and pydantic refuse such text with UnicodeEncodeError."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without lone surrogates: a byte a file name smuggled in becomes `\\xNN` as
    backslashreplace writes it, any other surrogate `\\uXXXX`."""
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
