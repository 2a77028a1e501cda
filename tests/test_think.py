"""`<think>` reasoning is split from answer text, also across chunk boundaries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leharness.loop.think import ThinkSplitter


def split_all(chunks: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    text, reasoning = "", ""
    for chunk in [*chunks, None]:
        t, r = splitter.flush() if chunk is None else splitter.feed(chunk)
        text, reasoning = text + t, reasoning + r
    return text, reasoning


def test_think_block_is_reasoning():
    assert split_all(["<think>plan it</think>The answer."]) == ("The answer.", "plan it")


def test_tags_cut_by_chunk_boundaries():
    chunks = ["<th", "ink>pl", "an</thi", "nk>An", "swer <", "b>bold</b>"]
    assert split_all(chunks) == ("Answer <b>bold</b>", "plan")


def test_text_that_only_looks_like_a_tag_start_is_released_at_the_end():
    assert split_all(["a <thi"]) == ("a <thi", "")


@given(
    before=st.text(alphabet="ab<>/ ", max_size=20).filter(lambda s: "<think>" not in s),
    inside=st.text(alphabet="ab<>/ ", max_size=20).filter(lambda s: "</think>" not in s),
    after=st.text(alphabet="ab<> ", max_size=20).filter(lambda s: "<think>" not in s),
    cuts=st.lists(st.integers(0, 80), max_size=8),
)
def test_any_chunking_gives_the_same_split(before, inside, after, cuts):
    whole = f"{before}<think>{inside}</think>{after}"
    points = sorted({c for c in cuts if c <= len(whole)})
    chunks = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    assert split_all(chunks) == (before + after, inside)
