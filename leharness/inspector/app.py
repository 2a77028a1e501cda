"""The Datasette instance `lh inspect` serves: sessions.db opened live (never
immutable, `lh` may be writing), this package's plugin, and its metadata."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from leharness import store

from . import metadata, register

# Suggested facets cost a second per page on a million events (every column
# is tried); the configured facets in metadata.py stay, and ?_facet= works.
# The events type facet walks its index: ~100 ms on a million events, more
# than Datasette's 200 ms default limit when the machine is busy.
SETTINGS = {"suggest_facets": False, "facet_time_limit_ms": 1000}


def make_datasette(path: Path, allowed_hosts: tuple[str, ...] = ()):
    """A Datasette over the database at `path`, the leharness plugin registered;
    `allowed_hosts`: names besides localhost and IP addresses that requests may use."""
    from datasette.app import Datasette

    register()
    with closing(store.connect_readonly(path)) as conn:
        columns = metadata.table_columns(conn)
    built = metadata.build(path.stem, columns)
    built["plugins"] = {"leharness": {"allowed_hosts": list(allowed_hosts)}}
    return Datasette([str(path)], metadata=built, settings=SETTINGS)
