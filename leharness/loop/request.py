"""The request's conversation, each message converted and JSON-encoded once.

A step sends the whole visible conversation. Converting every message
(`prompt.to_openai`) and encoding the whole request again at every step, twice
(once to measure it for compaction, once to send it), made a step at turn 500
cost several milliseconds more than at turn 10. Here each visible message is
converted and encoded once: the visible-message cache (projections/read.py)
hands out the same `Message` objects step after step until a compaction
rebuilds them, so the kept entries are matched to the view by identity and a
step converts and encodes only the messages that are new since the last one.

The bytes sent stay exactly `json.dumps(body)` in UTF-8: `encode_body` joins the
kept encodings with the separators `json.dumps` writes. The conversation's part of
the request is kept as bytes too, extended in place by the new messages: at turn
500 (~175 KB) joining every encoding again, then encoding the text to bytes, cost
four copies of the request a step; now a step copies it once, into the body sent.
The converted dicts are shared between steps: a model client reads them and must
never change them.
"""

from __future__ import annotations

import bisect
import json
import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from leharness.projections import Message

Converter = Callable[[Message], "dict[str, Any] | None"]
Scanner = Callable[[Message], "list[str]"]


class Messages(list[dict[str, Any]]):
    """The request's messages (plain dicts, as every ModelClient takes them), with
    the JSON of each, so the request and its size come without encoding them again."""

    def __init__(
        self,
        messages: Iterable[dict[str, Any]],
        encoded: list[str],
        tail: tuple[bytearray, int] | None = None,
        size: int | None = None,
    ) -> None:
        super().__init__(messages)
        self.encoded = encoded
        # (buffer, n): buffer[:n] is ", ".join(encoded[1:]) in UTF-8, when the builder kept
        # it. The buffer only ever grows at its end, so those n bytes stay as they are.
        self.tail = tail
        self.size = size  # len(json.dumps(self)) when the builder kept it

    def chars(self) -> int:
        """len(json.dumps(self)), from the kept encodings."""
        if len(self.encoded) != len(self):  # changed since it was built: measure it
            return len(json.dumps(list(self)))
        if self.size is not None:
            return self.size
        return sum(map(len, self.encoded)) + 2 * max(len(self.encoded) - 1, 0) + 2

    def joined(self) -> list[bytes | bytearray]:
        """ ", ".join(self.encoded) in UTF-8, as parts to join (the kept bytes not copied)."""
        if self.tail is None or not self.encoded:
            return [", ".join(self.encoded).encode()]
        first = self.encoded[0].encode()
        buffer, n = self.tail
        if not n:
            return [first]
        # The buffer itself when nothing was added since (the usual case); else its prefix.
        return [first, b", ", buffer if len(buffer) == n else bytes(buffer[:n])]


class Kept:
    """One session's converted and encoded messages, in the view's order."""

    def __init__(self) -> None:
        self.sources: list[Message] = []  # the Message objects converted (held: ids stay valid)
        self.entries: list[tuple[dict[str, Any] | None, str | None, list[str]]] = []  # per source
        self.converted: list[dict[str, Any]] = []  # those that send something
        self.encoded: list[str] = []
        self.at: list[int] = []  # for each converted message, its index in `sources`
        self.marked: list[tuple[int, list[str]]] = []  # (index in sources, what `scan` found)
        self._joined, self._joined_n = bytearray(), 0  # ", ".join(encoded[:_joined_n]), UTF-8
        self._chars, self._chars_n = 0, 0  # sum of len(encoded[:_chars_n])
        self.seen: tuple[Sequence[Message], int] | None = None  # the list last matched, its length
        self.generation: int | None = None  # that of the list last matched (projections)
        self._request: Messages | None = None  # see request()

    def joined(self) -> tuple[bytearray, int]:
        """ ", ".join(self.encoded) in UTF-8, as (buffer, its length): the buffer is
        extended in place by the messages added since the last call, never rewritten."""
        if self._joined_n < len(self.encoded):
            new = ", ".join(self.encoded[self._joined_n :]).encode()
            if self._joined_n:
                self._joined += b", "
            self._joined += new
            self._joined_n = len(self.encoded)
        return self._joined, len(self._joined)

    def request(self, system: str) -> Messages:
        """The request's messages: the system message, then every converted one. One
        list per session, extended in place by the messages added since the last call,
        its system message replaced when it changed: a step copies nothing of the
        conversation (at turn 500 copying its ~1,100 dicts and encodings, then freeing
        the copies, cost every step in proportion to the session's length). A model
        client reads it during its call and keeps nothing of it."""
        built = self._request
        if built is None or built[0]["content"] != system:
            head = {"role": "system", "content": system}
            if built is None:
                built = self._request = Messages([head], [json.dumps(head)])
            else:
                built[0], built.encoded[0] = head, json.dumps(head)
        sent = len(built) - 1
        if sent < len(self.converted):
            built.extend(self.converted[sent:])
            built.encoded.extend(self.encoded[sent:])
        built.tail = self.joined()
        built.size = len(built.encoded[0]) + self.chars() + 2 * len(self.encoded) + 2
        return built

    def chars(self) -> int:
        """The total length of the encodings."""
        if self._chars_n < len(self.encoded):
            self._chars += sum(map(len, self.encoded[self._chars_n :]))
            self._chars_n = len(self.encoded)
        return self._chars

    def extend(
        self, messages: Sequence[Message], convert: Converter, scan: Scanner, earlier: Kept | None
    ) -> None:
        """Add `messages`; those `earlier` holds (the same objects) are not converted again."""
        known = {}
        if earlier is not None:
            known = {id(m): e for m, e in zip(earlier.sources, earlier.entries, strict=True)}
        for message in messages:
            entry = known.get(id(message))
            if entry is None:
                converted = convert(message)
                encoded = json.dumps(converted) if converted is not None else None
                entry = (converted, encoded, scan(message))
            converted, encoded, found = entry
            if converted is not None and encoded is not None:  # set together
                self.at.append(len(self.sources))
                self.converted.append(converted)
                self.encoded.append(encoded)
            if found:
                self.marked.append((len(self.sources), found))
            self.sources.append(message)
            self.entries.append(entry)

    def without_first(self, dropped: int) -> Kept:
        """These messages but the first `dropped`."""
        rest, cut = Kept(), bisect.bisect_left(self.at, dropped)
        rest.sources, rest.entries = self.sources[dropped:], self.entries[dropped:]
        rest.converted, rest.encoded = self.converted[cut:], self.encoded[cut:]
        rest.at = [index - dropped for index in self.at[cut:]]
        rest.marked = [(index - dropped, found) for index, found in self.marked if index >= dropped]
        return rest

    def sent_chars(self) -> list[int]:
        """For each source message, what it adds to len(json.dumps(request messages))."""
        return [len(encoded) + 2 if encoded is not None else 0 for _, encoded, _ in self.entries]


_KEPT: OrderedDict[str, Kept] = OrderedDict()
_KEPT_SESSIONS = 8  # sessions a process steps at once: the loop, subagents, compaction


def conversation(
    session_id: str, messages: Sequence[Message], convert: Converter, scan: Scanner
) -> Kept:
    """`messages` converted (those that send something), their JSON, each one's index
    in `messages`, and what `scan` found in each. Kept per session: the messages seen
    at the last call (the same objects) are not converted again; after a compaction
    that is most of them (projections/read.py keeps the objects of unchanged rows).
    The result is shared: read it, never change it."""
    kept = _KEPT.get(session_id)
    seen = len(kept.sources) if kept is not None else 0
    if kept is not None and _same_list(kept, messages):
        _KEPT.move_to_end(session_id)  # (a step's compaction, then its model call)
        return kept
    if kept is None:
        kept = Kept()
        kept.extend(messages, convert, scan, None)
    elif _extends(kept, messages):
        kept.extend(messages[seen:], convert, scan, None)  # the usual step: a few new ones
    elif (dropped := _dropped_prefix(kept, messages)) is not None:
        kept = kept.without_first(dropped)  # the oldest left the view (compaction's T6)
        kept.extend(messages[len(kept.sources) :], convert, scan, None)
    else:
        earlier, kept = kept, Kept()
        kept.extend(messages, convert, scan, earlier)
    kept.seen = (messages, len(messages))
    kept.generation = getattr(messages, "generation", None)
    _KEPT[session_id] = kept
    _KEPT.move_to_end(session_id)
    while len(_KEPT) > _KEPT_SESSIONS:
        _KEPT.popitem(last=False)
    return kept


def _extends(kept: Kept, messages: Sequence[Message]) -> bool:
    """Whether `messages` starts with the kept messages (the same objects, in order).

    A list from projections.visible_messages says which kept list it was copied from
    (its `generation`; a compaction makes a new one): with the same one as at the last
    call, the kept messages are its beginning, and the usual step needs no walk over
    ~1,300 of them."""
    seen = len(kept.sources)
    if seen > len(messages):
        return False
    generation = getattr(messages, "generation", None)
    if seen and generation is not None and generation == kept.generation:
        return messages[seen - 1] is kept.sources[seen - 1]
    return all(map(operator.is_, messages[:seen], kept.sources))


def _same_list(kept: Kept, messages: Sequence[Message]) -> bool:
    """Whether `messages` is the very list last matched, as long as it was then (a
    view's list is built once per read and not changed): nothing to compare."""
    return (
        kept.seen is not None
        and kept.seen[0] is messages
        and kept.seen[1] == len(messages) == len(kept.sources)
    )


def _dropped_prefix(kept: Kept, messages: Sequence[Message]) -> int | None:
    """How many of the oldest kept messages `messages` no longer starts with, when the
    rest of them begins `messages` (the same objects in order); None otherwise."""
    if not messages:
        return None
    first = messages[0]
    dropped = next((i for i, m in enumerate(kept.sources) if m is first), None)
    if dropped is None:
        return None
    rest = kept.sources[dropped:]
    if len(rest) > len(messages) or not all(map(operator.is_, messages, rest)):
        return None
    return dropped


def encode_body(body: dict[str, Any]) -> bytes:
    """`json.dumps(body)` in UTF-8, byte for byte, reusing the kept encoding of its
    messages: the conversation's bytes are copied once, into the body."""
    messages = body.get("messages")
    first = next(iter(body), None)
    if first != "messages" or not isinstance(messages, Messages):
        return json.dumps(body).encode()
    if len(messages.encoded) != len(messages):
        return json.dumps(body).encode()
    parts: list[bytes | bytearray] = [b'{"messages": [', *messages.joined(), b"]"]
    rest = []
    for key, value in body.items():
        if key != "messages":
            encoded = tools_json(value) if key == "tools" else json.dumps(value)
            rest.append(f", {json.dumps(key)}: {encoded}")
    parts += ["".join(rest).encode(), b"}"]
    return b"".join(parts)


def tools_json(tools: list[dict[str, Any]]) -> str:
    """`json.dumps(tools)`, kept while the same spec objects are offered (a registry
    hands out the same dicts step after step; the list costs ~0.2 ms to encode)."""
    global _TOOLS
    key = tuple(map(id, tools))
    if _TOOLS is None or _TOOLS[0] != key:
        _TOOLS = (key, list(tools), json.dumps(tools))  # the specs held: their ids stay valid
    return _TOOLS[2]


_TOOLS: tuple[tuple[int, ...], list[dict[str, Any]], str] | None = None
