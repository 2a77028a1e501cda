"""Datasette metadata for sessions.db: a title and description for every table,
view and column, with default sorts and facets.

Built here in Python and handed to Datasette by `lh inspect`, so there is no
metadata file to keep in step. A test checks that every column of a fresh
database is described. Facets are set only where they are cheap on a million
events (an index or a small table answers them).
"""

from __future__ import annotations

import sqlite3

SHARED = {
    "session_id": "The session this row belongs to (links to its session page).",
    "session_seq": "Position of the event in its session's log, 1..n.",
    "call_id": "Id of the tool call, as the model named it.",
    "task_id": "Id of the background task.",
    "artifact_id": "Id of the artifact file holding the full output.",
    "status": "Where it stands: running, completed, failed, cancelled, …",
    "started_at": "When it started (UTC ISO-8601).",
    "finished_at": "When it ended (UTC ISO-8601); empty while running.",
    "duration_ms": "How long it took, in milliseconds.",
    "kind": "What sort of row this is.",
    "model": "Model name.",
    "prompt_tokens": "Prompt (input) tokens the provider reported.",
    "completion_tokens": "Completion (output) tokens the provider reported.",
    "child_session_id": "The subagent's own session (links to its session page).",
    "exit_code": "Exit code of the process, when there was one.",
    "ts": "When the event was recorded (UTC ISO-8601).",
    "trial_id": "Harbor's id of the trial (links to its row in trials).",
    "job": "The Harbor job folder the trial ran in.",
    "trial": "Harbor's trial name: task and a random suffix.",
    "task": "The task the trial ran.",
    "agent": "The Harbor agent that ran the trial (leharness, oracle, …).",
    "reward": "The verifier's reward (rewards.reward, or the only reward).",
    "exception_type": "What went wrong in the trial, if anything (Harbor's exception class).",
    "duration_s": "Wall time of the whole trial, in seconds.",
    "steps": "Model calls in the session.",
    "finish_reason": "Why the session's last invocation ended (max_steps, no_tool_calls, …).",
    "tool_failures": "Tool calls of the session that failed.",
    "sessions": "How many sessions.",
    "mean_reward": "Mean reward.",
}

TITLES = {
    "events": "Events",
    "sessions": "Sessions",
    "messages": "Messages",
    "tool_calls": "Tool calls",
    "tasks": "Background tasks",
    "processes": "Processes",
    "artifacts": "Artifacts",
    "approvals_always": "Always-allowed tools",
    "timeline": "Timeline rows",
    "model_usage": "Model usage",
    "transcript": "Transcript",
    "session_timeline": "Session timeline",
    "tool_failures": "Tool failures",
    "task_durations": "Task durations",
    "token_usage": "Token usage",
    "lh_meta": "leharness metadata",
    "trials": "Harbor trials",
    "trial_sessions": "Trial of each session",
    "trial_runs": "Trial runs",
    "reward_by_tool_failures": "Reward by tool failures",
    "task_usage": "Steps and tokens by task",
    "max_steps_trials": "Trials that hit max steps",
    "conversation": "Conversation (searchable)",
    "conversation_fts": "Conversation full-text index",
    "checkpoints": "File checkpoints",
}

TABLES: dict[str, dict] = {
    "lh_meta": {
        "description": "What leharness installed beside the events: the sha256 of the "
        "projection SQL (a different one reinstalls and rebuilds them) and the objects it "
        "created. Anything else in this file belongs to other tools and is left alone.",
        "columns": {
            "key": "projections_sha256 or projection_objects.",
            "value": "The hash, or the JSON list of [type, name] pairs.",
        },
    },
    "events": {
        "description": "The append-only log: every event of every session. The only source "
        "of truth; every other table and view is derived from it by triggers.",
        "sort_desc": "seq",
        "facets": ["type"],
        "columns": {
            "seq": "Global order of appends.",
            "id": "ULID of the event.",
            "type": "Event type, e.g. model.completed (the README lists them all).",
            "data": "The event's payload as JSON, validated by its pydantic model.",
        },
    },
    "sessions": {
        "description": "One row per session: title, model, status, counters and tokens. "
        "The title links to the session page.",
        "sort_desc": "updated_at",
        "facets": ["status", "model", "agent_type"],
        "columns": {
            "id": "ULID of the session.",
            "parent_session_id": "For a subagent: the session that spawned it.",
            "parent_task_id": "For a subagent: the parent's task that runs it.",
            "agent_type": "For a subagent: general, explore or plan.",
            "forked_from": "For a fork: the session it was branched from.",
            "forked_at": "For a fork: the last event copied from the source session.",
            "title": "The first prompt (links to the session page).",
            "cwd": "Working directory the session runs in.",
            "provider": "Model provider: openai, ollama, …",
            "model": "Model of the latest step.",
            "created_at": "When the session was created.",
            "updated_at": "When its latest event was recorded.",
            "status": "new, running, idle, failed or cancelled.",
            "finish_reason": "Why the last invocation ended.",
            "event_count": "Number of events in the session.",
            "steps": "Model calls made so far.",
            "prompt_tokens": "Prompt tokens over all model calls.",
            "completion_tokens": "Completion tokens over all model calls.",
            "last_prompt_tokens": "Prompt tokens of the latest call: the context size.",
            "last_model_seq": "The model.completed event that reported last_prompt_tokens.",
            "compacted_seq": "The last compaction event that changed the visible messages.",
        },
    },
    "messages": {
        "description": "The conversation as the model sees it, one row per message-producing "
        "event. visible = 0 rows were compacted away from the prompt.",
        "columns": {
            "role": "user, assistant or tool.",
            "kind": "prompt, answer, cancelled, tool_result, tool_error or notification.",
            "content": "The text of the message (Markdown; tool output verbatim).",
            "reasoning": "The model's reasoning text, when it gave one.",
            "tool_calls": "Tool calls the assistant asked for (JSON list).",
            "tool_call_id": "For a tool result: the call it answers.",
            "name": "For a tool result: the tool's name.",
            "visible": "1 when the message is sent to the model, 0 once compacted away.",
            "reasoning_dropped": "1 once compaction T1 left this old reasoning out.",
            "compacted": "What the model sees instead of content after compaction (a stub "
            "naming an artifact, a dropped-result marker or a summary); empty: content.",
            "compacted_by": "The compaction that set compacted: T2, T3, T6 or summary.",
        },
    },
    "tool_calls": {
        "description": "One row per tool call, from request to result.",
        "facets": ["name", "status"],
        "columns": {
            "model_seq": "session_seq of the model reply that asked for the call.",
            "position": "Index of the call within that reply.",
            "name": "Tool name.",
            "arguments": "Arguments as the model sent them (JSON).",
            "status": "requested, running, completed or failed.",
            "requested_at": "When the model asked for the call.",
            "error": "Error text the model saw, for a failed call.",
            "error_kind": "Class of failure: bad_arguments, unknown_tool, interrupted, …",
            "task_id": "The background task the call became, if it did.",
        },
    },
    "tasks": {
        "description": "Background work with a durable handle: long bash commands and subagents.",
        "sort_desc": "started_at",
        "facets": ["kind", "status"],
        "columns": {
            "kind": "bash or agent.",
            "status": "running, completed, failed or cancelled.",
            "call_id": "The tool call that started the task.",
            "command": "The shell command, for a bash task.",
            "prompt": "The subagent's prompt, for an agent task.",
            "pid": "Process id of the command.",
            "harness_pid": "Process id of the lh that runs the task.",
            "boot_id": "The machine's boot id when the command started.",
            "start_time": "When the process started (with boot_id: proves pid is still it).",
            "owner_session_id": "The session whose run started the task.",
            "forked_from": "Set on a fork's copy: the session that really ran the task.",
            "summary": "One-line result shown in the notification.",
            "output": "The task's output (a tail when it was long).",
            "cancel_reason": "Why the task was cancelled (forked: it goes on in the source).",
            "delivered": "1 once the model was shown the result.",
            "delivered_seq": "session_seq of the task.delivered event that showed it.",
            "finished_seq": "session_seq of the event that ended it: the order of notifications.",
        },
    },
    "processes": {
        "description": "Every command lh started, with what proves its pid is still that "
        "process; crash recovery stops only these.",
        "sort_desc": "started_at",
        "columns": {
            "task_id": "The task id it takes if it outlives inline_ms; names its status file.",
            "call_id": "The tool call that ran the command.",
            "pid": "Process id of the command's supervisor, which leads its process group.",
            "boot_id": "The machine's boot id when the command started.",
            "start_time": "When the process started (with boot_id: proves pid is still it).",
            "owner_session_id": "The session that started it (a copy keeps the original).",
            "timeout_s": "The command's time limit, held by its supervisor.",
        },
    },
    "artifacts": {
        "description": "Large outputs kept on disk under the artifacts folder.",
        "sort_desc": "created_at",
        "facets": ["kind"],
        "columns": {
            "kind": "What produced the file: a tool result or a task log.",
            "path": "Where the file is, relative to LEHARNESS_HOME.",
            "bytes": "Size of the file.",
            "sha256": "SHA-256 of the content.",
            "created_at": "When the artifact was written.",
        },
    },
    "approvals_always": {
        "description": 'Tools the user answered "always" for (--approval ask): not asked '
        "about again for the rest of that session, also after lh -c or /resume.",
        "columns": {
            "name": "The tool.",
            "call_id": 'The call whose approval was answered "always".',
            "decided_at": "When the answer was recorded.",
        },
    },
    "timeline": {
        "description": "Start, end and status of every step and model call (the "
        "session_timeline view adds tool calls, tasks and subagents from their own tables).",
        "columns": {
            "kind": "step or model.",
            "ref": "The step's session_seq.",
            "label": "Step number or model name.",
            "status": "running, completed, failed, cancelled or interrupted.",
        },
    },
    "model_usage": {
        "description": "Model calls and tokens summed per session and model.",
        "columns": {"model_calls": "Completed model calls."},
    },
    "transcript": {
        "description": "View: the visible conversation, one row per message, in order.",
        "columns": {
            "role": "user, assistant or tool.",
            "kind": "prompt, answer, cancelled, tool_result, tool_error, notification or summary.",
            "content": "The text of the message (Markdown; tool output verbatim).",
            "reasoning": "The model's reasoning text, when it gave one.",
            "tool_calls": "Tool calls the assistant asked for (JSON list).",
            "tool_call_id": "For a tool result: the call it answers.",
            "name": "For a tool result: the tool's name.",
            "compacted_by": "The compaction that changed this message: T2, T3, T6 or summary.",
        },
    },
    "session_timeline": {
        "description": "View: steps, model calls, tool calls, tasks and subagents with start, "
        "end and duration. Filter by session_id and sort by started_at for one session.",
        "columns": {
            "kind": "step, model, tool, task or subagent.",
            "label": "Step number, model name, tool name, command or prompt.",
            "status": "running, requested, completed, failed, cancelled or interrupted.",
            "ref": "The step's session_seq, the call_id or the task_id.",
        },
    },
    "tool_failures": {
        "description": "View: tool calls that failed, with the error the model saw.",
        "facets": ["name", "error_kind"],
        "columns": {
            "name": "Tool name.",
            "arguments": "Arguments as the model sent them (JSON).",
            "error_kind": "Class of failure: bad_arguments, unknown_tool, interrupted, …",
            "error": "The error text the model saw.",
        },
    },
    "task_durations": {
        "description": "View: background tasks with how long each ran.",
        "sort_desc": "started_at",
        "facets": ["kind", "status"],
        "columns": {
            "kind": "bash or agent.",
            "what": "The command or the subagent's prompt.",
        },
    },
    "token_usage": {
        "description": "View: model calls and tokens per session and model.",
        "facets": ["model"],
        "columns": {
            "model": "Model name ('?' when the reply named none).",
            "model_calls": "Completed model calls.",
            "total_tokens": "Prompt plus completion tokens.",
        },
    },
}


TABLES.update(
    {
        "trials": {
            "description": "One row per Harbor trial, read from its result.json by lh merge "
            "(kept as is: a rebuild never touches it).",
            "sort_desc": "started_at",
            "facets": ["job", "task", "agent", "model", "reward", "exception_type"],
            "columns": {
                "source": "The dataset the task came from.",
                "model": "Provider and model the agent was run with.",
                "rewards": "Every reward the verifier wrote (JSON).",
                "exception_message": "The exception's message, if the trial failed.",
                "agent_duration_s": "Wall time of the agent's run, in seconds.",
                "verifier_duration_s": "Wall time of the verifier, in seconds.",
                "input_tokens": "Input tokens Harbor recorded for the agent.",
                "output_tokens": "Output tokens Harbor recorded for the agent.",
                "cost_usd": "Cost Harbor recorded, when the model's price is known.",
                "path": "The trial's folder when it was merged.",
                "result": "The whole result.json.",
            },
        },
        "trial_sessions": {
            "description": "Which trial each merged session came from (subagents too).",
        },
        "trial_runs": {
            "description": "View: each trial's top-level lh session with its reward, steps, "
            "tokens and failed tool calls.",
            "facets": ["job", "task", "agent", "model", "reward", "finish_reason"],
        },
        "reward_by_tool_failures": {
            "description": "View: mean reward by the number of failed tool calls.",
        },
        "task_usage": {
            "description": "View: per task and agent, sessions, mean reward, steps and tokens.",
            "columns": {
                "mean_steps": "Mean model calls per session.",
                "mean_tokens": "Mean prompt plus completion tokens per session.",
            },
        },
        "max_steps_trials": {
            "description": "View: the trials whose session stopped at --max-steps.",
            "facets": ["job", "task"],
        },
        "conversation": {
            "description": "Every prompt, answer (with its tool calls' arguments), tool result "
            "and notification, full-text indexed by conversation_fts: the search box here and "
            "`lh search` query it.",
            "sort_desc": "seq",
            "facets": ["role", "kind", "tool"],
            "columns": {
                "seq": "The event's global seq (the rowid the index refers to).",
                "role": "user, assistant or tool.",
                "kind": "prompt, answer, tool_result, tool_error or notification.",
                "tool": "Tool name(s): of a result, or the calls of an answer (comma-separated).",
                "text": "The searchable text.",
            },
        },
        "conversation_fts": {
            "description": "The FTS5 index over conversation.text (external content, the "
            "sqlite-utils layout): `sqlite-utils search sessions.db conversation QUERY`.",
            "columns": {"text": "The indexed text (read from conversation)."},
        },
        "checkpoints": {
            "description": "Every change lh made to workspace files: write_file and edit_file "
            "(content sha256 before and after) and bash in a git work tree (snapshot tree ids). "
            "`lh diff` and `lh rewind` read it.",
            "facets": ["kind", "tool"],
            "columns": {
                "kind": "file (write_file, edit_file) or tree (bash in a git work tree).",
                "path": "The file, or the top of the work tree.",
                "before": "sha256 of the content before (empty: no file), or the tree id.",
                "after": "sha256 of the content after, or the tree id.",
                "git_dir": "For a tree: lh's own snapshot repository under LEHARNESS_HOME.",
                "call_id": "The tool call that made the change.",
                "tool": "write_file, edit_file or bash.",
            },
        },
    }
)


def table_metadata(table: str, columns: list[str]) -> dict:
    """One table's metadata, its column descriptions filled in from SHARED."""
    entry = dict(TABLES.get(table, {}))
    own = entry.get("columns", {})
    entry["columns"] = {c: own.get(c) or SHARED[c] for c in columns if c in own or c in SHARED}
    entry["title"] = TITLES.get(table, table)
    return entry


def table_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table's and view's columns, SQLite's own tables left out."""
    from leharness.store.schema import fts_shadow_tables

    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    shadows = fts_shadow_tables(conn)  # an index's own bookkeeping: Datasette hides them too
    return {
        name: [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]
        for (name,) in names
        if name not in shadows
    }


def build(database: str, columns_by_table: dict[str, list[str]]) -> dict:
    """Datasette metadata for `database`, given each table's and view's columns."""
    return {
        "title": "leharness",
        "description": "Every session of lh: the append-only event log, the projections "
        "triggers keep from it, and saved views. Open a session from the sessions table.",
        "databases": {
            database: {
                "description": "sessions.db: events, projections and views.",
                "tables": {
                    table: table_metadata(table, columns)
                    for table, columns in columns_by_table.items()
                },
            }
        },
    }
