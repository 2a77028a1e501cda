"""The map from event type to the projection triggers it fires (the README's event table)."""

from __future__ import annotations

from pathlib import Path

from leharness import store
from leharness.projections.fired import Trigger, _parse, fired_by, projection_triggers, summary
from leharness.store.events import EVENT_TYPES
from leharness.store.schema import projection_objects


def test_every_projection_trigger_on_events_is_found(tmp_path: Path) -> None:
    conn = store.open_store(tmp_path / "sessions.db")
    ours = {name for kind, name in projection_objects() if kind == "trigger"}
    installed = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        )
        if name in ours
    }
    assert {t.name for t in projection_triggers()} == installed


def test_every_type_a_when_clause_names_exists() -> None:
    """A misspelt type in a WHEN clause is a trigger that silently never fires."""
    named = {(t.name, kind) for t in projection_triggers() for kind in t.types}
    assert {(name, kind) for name, kind in named if kind not in EVENT_TYPES} == set()


def test_model_completed_fires_its_triggers_across_files() -> None:
    triggers = projection_triggers()
    fired = {t.name for t in fired_by("model.completed", triggers)}
    assert {"proj_messages_answer", "proj_model_usage", "proj_sessions_usage"} <= fired
    assert "proj_sessions_touch" in fired  # `NEW.type != 'session.created'`: every other
    assert "proj_sessions_touch" not in {t.name for t in fired_by("session.created", triggers)}
    files = {t.file for t in fired_by("model.completed", triggers)}
    assert summary("model.completed", triggers).startswith(f"{len(fired)} in {len(files)} files")


def test_when_clauses_are_read_as_sqlite_writes_them() -> None:
    head = "CREATE TRIGGER t AFTER INSERT ON events\n"
    one = _parse("t", "f", head + "WHEN NEW.type = 'a.b'\nBEGIN SELECT 1; END")
    some = _parse("t", "f", head + "WHEN NEW.type IN ('a', 'b') BEGIN SELECT 1; END")
    other = _parse("t", "f", head + "WHEN NEW.type != 'a' BEGIN SELECT 1; END")
    when = _parse(
        "t", "f", head + "WHEN NEW.type = 'a'\n     AND json_extract(NEW.data, '$.x') > 0\nBEGIN"
    )
    assert one == Trigger("t", "f", frozenset({"a.b"}))
    assert some == Trigger("t", "f", frozenset({"a", "b"}))
    assert other == Trigger("t", "f", frozenset({"a"}), negated=True)
    assert when == Trigger("t", "f", frozenset({"a"}), conditional=True)
    assert summary("a", [one, some, other, when]) == "2 in 1 file: `f`¹ ×2"
    assert summary("z", [one]) == "none"
