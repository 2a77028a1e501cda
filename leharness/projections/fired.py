"""Which projection triggers each event type fires, read from the projection files.

For readers (the README's event table is generated from it): each trigger that the
`.sql` files create on `events`, the file it lives in, and the event types its WHEN
clause names. Nothing here writes to a real database; the files run on a scratch
in-memory one, so what is read is exactly what SQLite installs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leharness.store.schema import fresh_install

_WHEN = re.compile(r"\bON\s+events\b(?:\s+FOR\s+EACH\s+ROW)?\s+WHEN\b(.*?)\bBEGIN\b", re.I | re.S)
_QUOTED = re.compile(r"'([^']*)'")
_IS = re.compile(r"\bNEW\.type\s*=\s*'([^']*)'", re.I)
_IN = re.compile(r"\bNEW\.type\s+IN\s*\(([^)]*)\)", re.I)
_NOT = re.compile(r"\bNEW\.type\s*(?:!=|<>)\s*'([^']*)'", re.I)


@dataclass(frozen=True)
class Trigger:
    name: str
    file: str  # the projection file's name without `.sql`
    types: frozenset[str]  # the event types it names (the ones it skips, when `negated`)
    negated: bool = False  # fires for every type except `types`
    conditional: bool = False  # the WHEN clause also tests the payload

    def fires_on(self, event_type: str) -> bool:
        return (event_type in self.types) != self.negated


def projection_triggers() -> list[Trigger]:
    """Every trigger on `events` the projection files create, in file order."""
    return [
        _parse(o.name, o.file.removesuffix(".sql"), o.sql or "")
        for o in fresh_install()
        if o.kind == "trigger" and o.tbl_name == "events"
    ]


def _parse(name: str, file: str, sql: str) -> Trigger:
    match = _WHEN.search(sql)
    when = match.group(1) if match else ""
    named = {m.group(1) for m in _IS.finditer(when)}
    for listed in _IN.finditer(when):
        named |= set(_QUOTED.findall(listed.group(1)))
    skipped = {m.group(1) for m in _NOT.finditer(when)}
    rest = _NOT.sub("", _IN.sub("", _IS.sub("", when))).strip()
    if skipped or not named:  # `!= 'x'`, or no test of the type at all: every other type
        return Trigger(name, file, frozenset(skipped), negated=True, conditional=bool(rest))
    return Trigger(name, file, frozenset(named), conditional=bool(rest))


def fired_by(event_type: str, triggers: list[Trigger]) -> list[Trigger]:
    return [trigger for trigger in triggers if trigger.fires_on(event_type)]


def summary(event_type: str, triggers: list[Trigger]) -> str:
    """`8 in 6 files: messages, model_usage, search¹, sessions ×2, …` (¹: only when the
    payload matches the trigger's condition too)."""
    fired = fired_by(event_type, triggers)
    if not fired:
        return "none"
    by_file: dict[str, list[Trigger]] = {}
    for trigger in fired:
        by_file.setdefault(trigger.file, []).append(trigger)
    parts = []
    for file, mine in by_file.items():
        count = f" ×{len(mine)}" if len(mine) > 1 else ""
        some = "¹" if any(t.conditional for t in mine) else ""
        parts.append(f"`{file}`{some}{count}")
    files = "1 file" if len(by_file) == 1 else f"{len(by_file)} files"
    return f"{len(fired)} in {files}: {', '.join(parts)}"
