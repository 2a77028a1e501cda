"""Shell completion of what click cannot know: session ids (from the database, read-only,
never creating it). Commands and options complete through click itself:
`eval "$(_LH_COMPLETE=bash_source lh)"` (zsh_source, fish_source for those shells)."""

from __future__ import annotations

from typing import Any


def session_ids(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """Session ids starting with what was typed, newest first, each with its title."""
    from click.shell_completion import CompletionItem

    from leharness import store

    path = store.db_path()
    if not path.exists():
        return []
    try:
        conn = store.connect_readonly(path)
        try:
            rows = conn.execute(
                "SELECT id, title FROM sessions WHERE id LIKE ? || '%' "
                "ORDER BY updated_at DESC LIMIT 50",
                (incomplete.upper(),),
            ).fetchall()
        finally:
            conn.close()
    except Exception:  # a completion must never print a traceback into the shell
        return []
    return [CompletionItem(id, help=" ".join((title or "").split())[:60]) for id, title in rows]
