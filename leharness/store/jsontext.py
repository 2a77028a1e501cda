"""JSON text from outside leharness (a provider's stream, a model's tool arguments, a
trial's result.json), parsed so that every caller's "not valid JSON" handling also
covers JSON nested deeper than Python's recursion limit: `json.loads` raises
RecursionError there (about 1,000 levels), which no `except ValueError` catches, so
one reply of `[[[[…` ended `lh` in a traceback.
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes, **options: Any) -> Any:
    """`json.loads(text)`; nesting too deep for it is a json.JSONDecodeError like any
    other invalid JSON."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        document = text if isinstance(text, str) else ""
        raise json.JSONDecodeError("nested too deeply", document, 0) from None
