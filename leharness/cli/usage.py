"""What a run used: steps, tool calls, tokens, and the cost where the model's price is
known. The one-shot summary line on stderr and `lh sessions` show it."""

from __future__ import annotations

from dataclasses import dataclass

# US dollars per million tokens (input, output), from the providers' price pages (2025).
# A model not listed has no cost shown rather than a guessed one; a local model costs 0.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
}


@dataclass(frozen=True)
class Usage:
    steps: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.steps - other.steps,
            self.tool_calls - other.tool_calls,
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
        )


def session_usage(conn, session_id: str) -> Usage:
    """The session's totals so far, from its projection rows."""
    from leharness import projections

    row = projections.get_session(conn, session_id)
    if row is None:
        return Usage()
    (calls,) = conn.execute(
        "SELECT count(*) FROM tool_calls WHERE session_id = ?", (session_id,)
    ).fetchone()
    return Usage(row.steps, calls, row.prompt_tokens, row.completion_tokens)


def cost(provider: str, model: str, usage: Usage) -> float | None:
    """Dollars, or None when the price is not known."""
    if provider == "ollama":
        return 0.0
    name = model.lower().split("/")[-1]
    matches = [prefix for prefix in PRICES if name.startswith(prefix)]
    if not matches:
        return None
    per_in, per_out = PRICES[max(matches, key=len)]
    return (usage.prompt_tokens * per_in + usage.completion_tokens * per_out) / 1_000_000


def summary_line(usage: Usage, price: float | None) -> str:
    """`3 steps · 2 tool calls · 1,234 tokens in / 56 out · $0.0004`"""

    def plural(n: int, word: str) -> str:
        return f"{n:,} {word}{'' if n == 1 else 's'}"

    parts = [
        plural(usage.steps, "step"),
        plural(usage.tool_calls, "tool call"),
        f"{usage.prompt_tokens:,} tokens in / {usage.completion_tokens:,} out",
    ]
    if price is not None:
        parts.append(f"${price:.4f}" if price else "$0 (local)")
    return " · ".join(parts)


def tokens_cell(prompt_tokens: int, completion_tokens: int) -> str:
    """`12.3k / 456`: tokens in / out, short enough for a table."""

    def short(n: int) -> str:
        return f"{n / 1000:.1f}k" if n >= 10_000 else f"{n:,}"

    return f"{short(prompt_tokens)} / {short(completion_tokens)}"
