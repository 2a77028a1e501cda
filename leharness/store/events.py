"""The closed catalogue of event payloads: one pydantic model per event type.

Each model validates what `append()` writes and parses what readers read back.
The `type` field is the discriminator; it lives in the `events.type` column and
is not repeated inside the stored `data` JSON. Never change the meaning of a
field once it has been written: old databases must keep projecting the same way.
"""

# No `from __future__ import annotations`: pydantic would evaluate every annotation
# from its string when each class is made (a fifth to a quarter of this module's import time).
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


# defer_build: a model's validator is built on its first use, not at import, so a
# command that touches a few models (lh show) does not pay for all of them.
class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    type: str  # each model narrows it to its own Literal: the union's discriminator


class ToolCall(BaseModel):
    """One tool call requested by the model; `arguments` is the raw JSON text."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    id: str
    name: str
    arguments: str = "{}"


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    prompt_tokens: int = 0
    completion_tokens: int = 0


# -- sessions ---------------------------------------------------------------


class SessionCreated(Payload):
    """A session began: where it runs, with which model, and who spawned it."""

    type: Literal["session.created"] = "session.created"
    cwd: str = ""
    provider: str | None = None
    model: str | None = None
    parent_session_id: str | None = None
    parent_task_id: str | None = None
    agent_type: str | None = None


class SessionForked(Payload):
    """This session was branched from another session's events 1..at_session_seq."""

    type: Literal["session.forked"] = "session.forked"
    source_session_id: str
    at_session_seq: int


# -- invocations and steps --------------------------------------------------


class InvocationReceived(Payload):
    """A user message arrived (CLI prompt, REPL line, API); kind steering: typed mid-run."""

    type: Literal["invocation.received"] = "invocation.received"
    text: str
    kind: str = "message"
    instructions_hash: str | None = None  # sha256 of the project instructions in the prompt


class InvocationAuto(Payload):
    """The harness woke an idle session itself, e.g. a background task finished."""

    type: Literal["invocation.auto"] = "invocation.auto"
    reason: str = "task_completed"
    instructions_hash: str | None = None  # sha256 of the project instructions in the prompt


class StepStarted(Payload):
    """One turn of the loop began: a model call and its tool calls follow."""

    type: Literal["step.started"] = "step.started"
    step: int
    provider: str | None = None
    model: str | None = None


# -- model calls ------------------------------------------------------------


class ModelCompleted(Payload):
    """The model answered: its text, reasoning, tool calls, usage and retries."""

    type: Literal["model.completed"] = "model.completed"
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = []
    usage: Usage | None = None
    model: str | None = None
    attempts: int = 1
    duration_ms: int | None = None


class ModelFailed(Payload):
    """The model call failed for good, after `attempts` tries."""

    type: Literal["model.failed"] = "model.failed"
    error: str
    kind: str = "error"
    attempts: int = 1


class ModelCancelled(Payload):
    """The user cancelled a model call; the partial text is kept and replayed."""

    type: Literal["model.cancelled"] = "model.cancelled"
    text: str = ""
    reasoning: str = ""


# -- tools ------------------------------------------------------------------


class ToolStarted(Payload):
    """A tool call began running."""

    type: Literal["tool.started"] = "tool.started"
    call_id: str
    name: str


class ProcessStarted(Payload):
    """A command started: its process group, and what proves that process is still it."""

    type: Literal["process.started"] = "process.started"
    call_id: str | None = None
    task_id: str  # the task it becomes if it outlives inline_ms; names its status file
    pid: int  # leads the process group
    boot_id: str | None = None  # None where the platform does not say
    start_time: str | None = None
    owner_session_id: str  # copies (fork, import) keep the original: not theirs to stop
    timeout_s: int | None = None


class ToolCompleted(Payload):
    """A tool call finished; `result` is what the model sees."""

    type: Literal["tool.completed"] = "tool.completed"
    call_id: str
    name: str
    result: str
    artifact_id: str | None = None
    duration_ms: int | None = None


class ToolFailed(Payload):
    """A tool call failed (bad arguments, unknown tool, error, interruption)."""

    type: Literal["tool.failed"] = "tool.failed"
    call_id: str
    name: str
    error: str
    kind: str = "error"
    duration_ms: int | None = None


class ApprovalRequested(Payload):
    """A tool call that runs a command or changes files waited for the user's approval."""

    type: Literal["approval.requested"] = "approval.requested"
    call_id: str
    name: str
    summary: str


class ApprovalDecided(Payload):
    """The answer to an approval (allow, deny, always for this session) and who gave it."""

    type: Literal["approval.decided"] = "approval.decided"
    call_id: str
    decision: Literal["allow", "deny", "always"]
    by: str = "user"  # user | always (earlier answer) | no_terminal | subagent | cancelled | error


# -- tasks ------------------------------------------------------------------


class TaskStarted(Payload):
    """A tool call became a background task with a durable handle."""

    type: Literal["task.started"] = "task.started"
    task_id: str
    kind: str
    call_id: str | None = None
    command: str | None = None
    prompt: str | None = None
    child_session_id: str | None = None
    pid: int | None = None
    artifact_id: str | None = None
    harness_pid: int | None = None  # the lh process that owns the task
    boot_id: str | None = None  # with start_time: proves pid is still the task's process
    start_time: str | None = None
    owner_session_id: str | None = None  # the session whose runtime started it


class TaskCompleted(Payload):
    """A background task finished successfully (ts = when it really finished)."""

    type: Literal["task.completed"] = "task.completed"
    task_id: str
    summary: str = ""
    output: str | None = None
    exit_code: int | None = None
    artifact_id: str | None = None


class TaskFailed(Payload):
    """A background task failed, e.g. a non-zero exit code or its time limit."""

    type: Literal["task.failed"] = "task.failed"
    task_id: str
    error: str = ""
    output: str | None = None
    exit_code: int | None = None
    artifact_id: str | None = None
    timed_out: bool | None = None


class TaskCancelled(Payload):
    """A background task was stopped: by the parent, the user, or a dead process."""

    type: Literal["task.cancelled"] = "task.cancelled"
    task_id: str
    reason: str
    output: str | None = None
    artifact_id: str | None = None


class TaskDelivered(Payload):
    """Finished tasks were shown to the model as one notification message."""

    type: Literal["task.delivered"] = "task.delivered"
    task_ids: list[str]
    text: str


# -- artifacts, compaction, skills -----------------------------------------


class ArtifactCreated(Payload):
    """A large output was written to disk; the model sees a preview and the path."""

    type: Literal["artifact.created"] = "artifact.created"
    artifact_id: str
    kind: str
    path: str
    bytes: int
    sha256: str
    call_id: str | None = None
    task_id: str | None = None


class CompactionStarted(Payload):
    """Context pressure crossed a tier's threshold."""

    type: Literal["compaction.started"] = "compaction.started"
    tier: str
    pressure: float | None = None
    details: dict[str, Any] = {}


class CompactionSummary(Payload):
    """A window of the conversation was summarised by the model."""

    type: Literal["compaction.summary"] = "compaction.summary"
    from_seq: int
    to_seq: int
    summary: str
    artifact_id: str | None = None
    tier: str | None = None
    text: str | None = None  # the message the model sees in place of the window


class CompactionSummaryFailed(Payload):
    """Summarising a window failed; the window stays as it was and the loop goes on."""

    type: Literal["compaction.summary.failed"] = "compaction.summary.failed"
    from_seq: int
    to_seq: int
    error: str
    kind: str = "error"
    tier: str | None = None


class CompactionCompleted(Payload):
    """A compaction tier was applied to the visible conversation."""

    type: Literal["compaction.completed"] = "compaction.completed"
    tier: str
    details: dict[str, Any] = {}


class SkillLoaded(Payload):
    """The model loaded a skill's body."""

    type: Literal["skill.loaded"] = "skill.loaded"
    name: str
    path: str
    content_hash: str


# -- MCP servers ------------------------------------------------------------


class McpConnected(Payload):
    """An MCP server is connected for this run; its tools are offered under these names."""

    type: Literal["mcp.connected"] = "mcp.connected"
    server: str
    transport: str
    tools: list[str] = []


class McpFailed(Payload):
    """An MCP server is unusable (bad config entry, failed start or crash); its tools are gone."""

    type: Literal["mcp.failed"] = "mcp.failed"
    server: str
    error: str
    stderr_tail: str = ""
    kind: str = "start"


class HookRan(Payload):
    """A hook from settings.toml ran: its command, exit code, time and the end of its stderr."""

    type: Literal["hook.ran"] = "hook.ran"
    hook: str  # pre_tool | post_tool | invocation_start | invocation_end | compaction
    command: str
    exit_code: int | None = None  # None: killed after its timeout, or could not start
    duration_ms: int = 0
    stderr_tail: str = ""
    timed_out: bool = False
    blocked: bool = False  # a pre_tool hook that exited 2: the call did not run
    call_id: str | None = None
    tool: str | None = None


class FileCheckpoint(Payload):
    """write_file or edit_file changed a file: its content before and after, by sha256.

    Both contents are kept once each in `$LEHARNESS_HOME/artifacts/checkpoints/`;
    before_sha256 is None when the file did not exist.
    """

    type: Literal["checkpoint.file"] = "checkpoint.file"
    path: str  # absolute
    before_sha256: str | None = None
    after_sha256: str
    call_id: str | None = None
    tool: str | None = None


class TreeCheckpoint(Payload):
    """A command changed the git work tree: a snapshot of its tracked and untracked,
    not ignored files, before and after, as tree ids in a git directory of lh's own."""

    type: Literal["checkpoint.tree"] = "checkpoint.tree"
    worktree: str  # absolute path of the work tree's top
    git_dir: str  # the snapshot repository under $LEHARNESS_HOME
    before_tree: str
    after_tree: str
    call_id: str | None = None
    tool: str | None = None


class WorkspaceRestored(Payload):
    """`lh rewind` put workspace files back as they were at an event of the source session."""

    type: Literal["workspace.restored"] = "workspace.restored"
    source_session_id: str
    at_session_seq: int
    restored: list[str] = Field(default_factory=list)  # absolute paths written or removed
    skipped: list[str] = Field(default_factory=list)  # changed outside lh since: left alone


class AgentFinished(Payload):
    """An invocation ended: no_tool_calls, max_steps, model_failed or cancelled."""

    type: Literal["agent.finished"] = "agent.finished"
    reason: Literal["no_tool_calls", "max_steps", "model_failed", "cancelled"]
    text: str = ""


# Spelled out (not built from a tuple) so that type checkers see every model: a
# `match`/isinstance on `event.data` narrows it and `event.data.x` is checked.
AnyPayload = (
    SessionCreated
    | SessionForked
    | InvocationReceived
    | InvocationAuto
    | StepStarted
    | ModelCompleted
    | ModelFailed
    | ModelCancelled
    | ToolStarted
    | ProcessStarted
    | ToolCompleted
    | ToolFailed
    | ApprovalRequested
    | ApprovalDecided
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | TaskCancelled
    | TaskDelivered
    | ArtifactCreated
    | CompactionStarted
    | CompactionSummary
    | CompactionSummaryFailed
    | CompactionCompleted
    | SkillLoaded
    | McpConnected
    | McpFailed
    | HookRan
    | FileCheckpoint
    | TreeCheckpoint
    | WorkspaceRestored
    | AgentFinished
)

#: Every payload model, in catalogue order.
PAYLOAD_MODELS: tuple[type[Payload], ...] = get_args(AnyPayload)

EventPayload = Annotated[AnyPayload, Field(discriminator="type")]

PAYLOAD_ADAPTER: TypeAdapter[EventPayload] = TypeAdapter(
    EventPayload, config=ConfigDict(defer_build=True)
)

#: Every event type name, in catalogue order, with the model that validates it.
EVENT_TYPES: dict[str, type[Payload]] = {
    model.model_fields["type"].default: model for model in PAYLOAD_MODELS
}


class Event(BaseModel):
    """A stored event: the envelope columns plus its validated payload."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    seq: int
    id: str
    session_id: str
    session_seq: int
    ts: str
    data: EventPayload

    @property
    def type(self) -> str:
        return self.data.type

    def as_record(self) -> dict[str, Any]:
        """The event as one flat JSON-ready dict (the `--json` and export line)."""
        return {
            "seq": self.seq,
            "id": self.id,
            "session_id": self.session_id,
            "session_seq": self.session_seq,
            "ts": self.ts,
            "type": self.type,
            "data": self.data.model_dump(exclude={"type"}, exclude_none=True),
        }
