"""Splitting `<think>…</think>` reasoning out of a local model's streamed text.

Tags may be cut anywhere by chunk boundaries, so the splitter holds back any
suffix that could still become a tag and releases it once it cannot.
"""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Feed text chunks; get back (answer_text, reasoning_text) pieces in order."""

    def __init__(self) -> None:
        self.in_think = False
        self._pending = ""

    def feed(self, chunk: str) -> tuple[str, str]:
        buffer = self._pending + chunk
        self._pending = ""
        text: list[str] = []
        reasoning: list[str] = []
        while buffer:
            tag = CLOSE if self.in_think else OPEN
            index = buffer.find(tag)
            if index >= 0:
                (reasoning if self.in_think else text).append(buffer[:index])
                buffer = buffer[index + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_tag_suffix(buffer, tag)
            (reasoning if self.in_think else text).append(buffer[: len(buffer) - keep])
            self._pending = buffer[len(buffer) - keep :]
            break
        return "".join(text), "".join(reasoning)

    def flush(self) -> tuple[str, str]:
        """End of stream: whatever was held back is plain content after all."""
        rest, self._pending = self._pending, ""
        return ("", rest) if self.in_think else (rest, "")


def _partial_tag_suffix(buffer: str, tag: str) -> int:
    """Length of the longest suffix of `buffer` that is a proper prefix of `tag`."""
    for length in range(min(len(tag) - 1, len(buffer)), 0, -1):
        if tag.startswith(buffer[-length:]):
            return length
    return 0
