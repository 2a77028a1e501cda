"""The typo guard: `lh sesions` is a mistyped command, not a prompt to send to the model.

A first argument that is one word close to a subcommand (or to `resume` /
`continue`, which are options) stops `lh` with a hint and exit code 2 before a
session is created; `lh -- WORD` sends it as a prompt anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

# Words people type for what is an option of `lh`, not a subcommand.
OPTION_WORDS = {"resume": "lh --resume", "continue": "lh -c"}


def distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string
    alignment): `exprot` is one edit from `export`. Words here are short, so the
    quadratic table costs nothing (a library would be a dependency for 12 lines)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def close(word: str, name: str) -> bool:
    """Within 2 edits (1 for words under 5 letters; words under 4 letters must keep
    their length, so `how` is not taken for `show`)."""
    if word == name:
        return True
    if len(word) <= 3 and len(word) != len(name):
        return False
    return distance(word, name) <= (2 if len(word) >= 5 else 1)


def suggestion(word: str, commands: Iterable[str]) -> str | None:
    """The command line `word` probably meant (`lh sessions`), or None."""
    if not word.isalpha() or word.lower() != word:
        return None  # a path, a sentence in quotes, a number: a prompt
    choices = {name: f"lh {name}" for name in commands} | OPTION_WORDS
    found = sorted((distance(word, name), name) for name in choices if close(word, name))
    return choices[found[0][1]] if found else None
