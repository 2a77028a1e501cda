"""`lh --resume` and `/resume` without an id: pick a recent session from a list (title,
age, steps, tokens, status), typing to filter, as Claude Code's `--resume` does.

The filter is a plain function of the rows and the typed text; it takes an optional
content search (text -> the ids of sessions whose messages match) so that a full-text
search can widen it without changing the picker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leharness.projections import SessionRow

from .usage import tokens_cell

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples

Search = Callable[[str], Iterable[str]]  # typed text -> ids of sessions whose content matches
LIMIT = 200  # sessions offered; the filter searches these
SHOWN = 15  # rows on screen


@dataclass(frozen=True)
class Choice:
    id: str
    title: str
    age: str
    steps: int
    tokens: str
    status: str

    def line(self) -> str:
        title = self.title if len(self.title) <= 48 else self.title[:47] + "…"
        return (
            f"{title:<48}  {self.age:>5}  {self.steps:>5}  {self.tokens:>15}  {self.status:<9}"
            f"  {self.id[:10]}"
        )


HEADER = f"{'title':<48}  {'age':>5}  {'steps':>5}  {'tokens in/out':>15}  {'status':<9}  id"


def choices(rows: Iterable[SessionRow], now: datetime | None = None) -> list[Choice]:
    """Top-level sessions, most recently active first (subagents are resumed via parents)."""
    now = now or datetime.now(UTC)
    top = [row for row in rows if not row.parent_session_id]
    top.sort(key=lambda row: (row.updated_at, row.id), reverse=True)
    return [
        Choice(
            row.id,
            " ".join((row.title or "(untitled)").split()),
            age(row.updated_at, now),
            row.steps,
            tokens_cell(row.prompt_tokens, row.completion_tokens),
            row.status,
        )
        for row in top
    ]


def age(timestamp: str, now: datetime) -> str:
    """`42s`, `5m`, `3h`, `2d`, `6w`."""
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(int((now - then).total_seconds()), 0)
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def filter_choices(items: list[Choice], text: str, search: Search | None = None) -> list[Choice]:
    """The choices whose title, id or status hold every typed word (any case), plus those
    the content search finds; in the order given."""
    words = text.lower().split()
    if not words:
        return items
    found = set(search(text)) if search is not None else set()

    def matches(item: Choice) -> bool:
        haystack = f"{item.title} {item.id} {item.status}".lower()
        return item.id in found or all(word in haystack for word in words)

    return [item for item in items if matches(item)]


@dataclass
class _Shown:
    """What the picker shows: the rows that match the typed text, and the selected one."""

    rows: list[Choice]
    selected: int = 0


def build_app(items: list[Choice], search: Search | None = None, **app_options: Any) -> Any:
    """The prompt_toolkit application: a filter line, the list, ↑/↓, Enter, Esc."""
    from prompt_toolkit.application import Application
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import HSplit, Layout, Window
    from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl

    state = _Shown(items)
    query = Buffer(multiline=False)

    def refilter(_: Any) -> None:
        state.rows = filter_choices(items, query.text, search)
        state.selected = 0

    query.on_text_changed += refilter

    def rows() -> StyleAndTextTuples:
        if not state.rows:
            return [("class:dim", "  no session matches\n")]
        start = max(0, state.selected - SHOWN + 1)
        out: StyleAndTextTuples = []
        for index, item in enumerate(state.rows[start : start + SHOWN], start):
            mark, style = ("› ", "reverse") if index == state.selected else ("  ", "")
            out.append((style, f"{mark}{item.line()}\n"))
        return out

    bindings = KeyBindings()

    @bindings.add("up")
    def _up(event: Any) -> None:
        state.selected = max(0, state.selected - 1)

    @bindings.add("down")
    def _down(event: Any) -> None:
        state.selected = min(len(state.rows) - 1, state.selected + 1)

    @bindings.add("enter")
    def _pick(event: Any) -> None:
        event.app.exit(result=state.rows[state.selected].id if state.rows else None)

    @bindings.add("escape", eager=True)
    @bindings.add("c-c")
    def _leave(event: Any) -> None:
        event.app.exit(result=None)

    layout = Layout(
        HSplit(
            [
                Window(
                    FormattedTextControl("resume which session? type to filter · ↑↓ · Enter · Esc"),
                    height=1,
                ),
                Window(BufferControl(query), height=1),
                Window(FormattedTextControl("  " + HEADER), height=1, style="class:dim"),
                Window(FormattedTextControl(rows)),
            ]
        ),
        focused_element=query,
    )
    return Application(layout=layout, key_bindings=bindings, full_screen=False, **app_options)


def content_search(conn: Any) -> Search:
    """Typed text -> the sessions whose conversation matches it (the full-text index);
    text that is no valid query yet (a phrase still open) matches nothing."""
    from leharness.projections.search import matching_session_ids
    from leharness.store import StoreError

    def search(text: str) -> list[str]:
        words = text.strip()
        if not words:
            return []
        try:
            return matching_session_ids(conn, words, limit=LIMIT)
        except StoreError:
            return []

    return search


def pick(conn: Any, search: Search | None = None, **app_options: Any) -> str | None:
    """Show the picker on the terminal; the chosen session id (None: left with Esc).
    Typing filters by title and, through the full-text index, by content."""
    return _picker(conn, search, **app_options).run()


async def pick_async(conn: Any, search: Search | None = None, **app_options: Any) -> str | None:
    """The same inside a running event loop (the REPL's /resume)."""
    return await _picker(conn, search, **app_options).run_async()


def _picker(conn: Any, search: Search | None, **app_options: Any) -> Any:
    from leharness import projections

    items = choices(projections.list_sessions(conn, LIMIT))
    return build_app(items, search or content_search(conn), **app_options)
