"""Secret redaction: tool output never carries the value of a secret environment variable.

A secret is `OPENAI_API_KEY` or any variable whose name ends in `_KEY`,
`_TOKEN` or `_SECRET`, with a value of at least MIN_SECRET_CHARS characters
(shorter values would match too much ordinary text); so is such a value that
only mcp.json sets (`register` makes it known). Every tool output, and the
arguments of every tool call the model asks for, is passed through `redact`
before it becomes an event, an artifact or part of a prompt; streamed
output (a background task's log) goes through a `StreamRedactor`, which
holds back just enough bytes that a secret split across two chunks is
still caught.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from leharness.store.text import storable

MIN_SECRET_CHARS = 8
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET")


@dataclass(frozen=True)
class Secret:
    name: str
    value: bytes

    @property
    def marker(self) -> bytes:
        return f"[redacted ${self.name}]".encode()


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper == "OPENAI_API_KEY" or upper.endswith(SECRET_SUFFIXES)


_REGISTERED: dict[str, str] = {}  # secret-named values known from config files, not env


CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")


def is_credential_header(name: str) -> bool:
    """Authorization, X-Api-Key, Cookie, …: an HTTP header that carries a credential."""
    lower = name.lower()
    return any(word in lower for word in CREDENTIAL_HEADER_WORDS)


def register(values: Mapping[str, str], headers: bool = False) -> None:
    """Make secret values that are not in the environment known: mcp.json's `env` entries
    with a secret's name, or (`headers`) its HTTP servers' credential headers (the value
    after a scheme such as `Bearer`)."""
    for name, value in values.items():
        if headers:
            value = value.split(" ", 1)[-1] if is_credential_header(name) else ""
        elif not is_secret_name(name):
            continue
        if len(value.strip()) >= MIN_SECRET_CHARS:
            _REGISTERED[name] = value


def secrets(env: Mapping[str, str] | None = None) -> list[Secret]:
    """The secret values of the environment (and the registered ones), longest first (so no
    secret hides another)."""
    found = {value: name for name, value in _REGISTERED.items()} if env is None else {}
    env = os.environ if env is None else env
    found |= {
        value: name
        for name, value in env.items()
        if is_secret_name(name) and len(value.strip()) >= MIN_SECRET_CHARS
    }
    ordered = sorted(found.items(), key=lambda item: -len(item[0]))
    return [Secret(name, value.encode("utf-8", "surrogateescape")) for value, name in ordered]


def redact_bytes(data: bytes, found: list[Secret]) -> bytes:
    for secret in found:
        if secret.value in data:
            data = data.replace(secret.value, secret.marker)
    return data


def redact(text: str, found: list[Secret] | None = None) -> str:
    """`text` with every secret value replaced by `[redacted $NAME]` (and made storable)."""
    found = secrets() if found is None else found
    text = storable(text)
    if not text or not found:
        return text
    for secret in found:
        value = secret.value.decode("utf-8", "surrogateescape")
        if value in text:
            text = text.replace(value, secret.marker.decode())
    return text


def redact_json(text: str, found: list[Secret] | None = None) -> str:
    """JSON text (a tool call's arguments) with every secret redacted, also where JSON
    escaped it (a quote, a backslash, non-ASCII); the result is still the same JSON shape."""
    found = secrets() if found is None else found
    text = redact(text, found)
    for secret in found:
        value = secret.value.decode("utf-8", "surrogateescape")
        for escaped in {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}:
            if escaped != value and escaped in text:
                text = text.replace(escaped, secret.marker.decode())
    return text


class StreamRedactor:
    """Redacts a byte stream chunk by chunk; `feed` returns what is safe to pass on.

    Only an end that could be the start of a secret is held back (usually
    nothing, so a live log is not behind), and the cut moves earlier when a
    secret straddles it, so no secret is ever split between two outputs.
    """

    def __init__(self, found: list[Secret] | None = None) -> None:
        self.found = secrets() if found is None else found
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self.found:
            return chunk
        data = self._pending + chunk
        cut = self._safe_cut(data)
        self._pending = data[cut:]
        return redact_bytes(data[:cut], self.found)

    def pending(self) -> bytes:
        """The held-back bytes, redacted, without consuming them (for a live view)."""
        return redact_bytes(self._pending, self.found)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return redact_bytes(rest, self.found)

    def _held_back(self, data: bytes) -> int:
        """The length of the longest end of `data` that is a proper prefix of a secret."""
        longest = 0
        for secret in self.found:
            for size in range(min(len(secret.value) - 1, len(data)), longest, -1):
                if data.endswith(secret.value[:size]):
                    longest = size
                    break
        return longest

    def _safe_cut(self, data: bytes) -> int:
        cut = len(data) - self._held_back(data)
        moved = True
        while moved and cut > 0:
            moved = False
            for secret in self.found:
                start = data.find(secret.value, max(0, cut - len(secret.value) + 1))
                while start != -1 and start < cut:
                    if cut < start + len(secret.value):
                        cut, moved = start, True
                        break
                    start = data.find(secret.value, start + 1)
        return cut
