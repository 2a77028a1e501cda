"""The leharness Datasette plugin: a page per session and readable cells.

Registered through the `datasette` entry point, so plain
`datasette .leharness/sessions.db` has it too; `lh inspect` registers it
itself when the package was installed without it. It only reads: every query
goes through Datasette's read-only connections.

- `/<database>/-/session/<id>`: the transcript with tool calls folded into
  the message that asked for them, and a timeline chart drawn as SVG.
- `render_cell`: Markdown messages, indented JSON payloads, session ids as
  links to their session page.
- `asgi_wrapper`: refuses requests whose Host header is not this server's
  (DNS rebinding); more names may be allowed with the plugin setting
  `allowed_hosts` (guard.py).
"""

from __future__ import annotations

import sqlite3
import sys
import weakref
from typing import TYPE_CHECKING
from urllib.parse import quote

from pluggy import HookimplMarker

from . import cells, chart, page
from .guard import HostGuard

if TYPE_CHECKING:
    from datasette.utils.asgi import Response

# Datasette's own `hookimpl` is this marker; importing it from datasette would load
# datasette.utils and click, and this module loads neither (only the hooks' bodies need them).
hookimpl = HookimplMarker("datasette")

SESSION_ROUTE = r"^/(?P<database>[^/]+)/-/session/(?P<session_id>[^/]+)$"
# Per Datasette instance: database name -> whether it holds leharness tables.
_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register() -> None:
    """Register this module with Datasette's plugin manager, once."""
    from datasette.plugins import pm

    module = sys.modules[__name__]
    if not pm.is_registered(module):
        pm.register(module, name="leharness")


@hookimpl
def asgi_wrapper(datasette):
    names = (datasette.plugin_config("leharness") or {}).get("allowed_hosts") or ()

    def wrap(app):
        return HostGuard(app, names)

    return wrap


@hookimpl
def register_routes():
    return [(SESSION_ROUTE, session_view)]


async def session_view(datasette, request):
    from datasette.utils.asgi import Response

    database = request.url_vars["database"]
    session_ref = request.url_vars["session_id"]
    try:
        db = datasette.get_database(database)
    except KeyError:
        return await _not_found(datasette, request, f"no database {database!r}")
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (database, "sessions")), ("view-database", database), "view-instance"],
    )
    from leharness.store import StoreError

    try:
        data = await db.execute_fn(lambda conn: page.load(conn, session_ref))
    except StoreError as error:
        return await _not_found(datasette, request, str(error))
    except sqlite3.OperationalError as error:
        message = f"{database} is not a leharness database ({error})"
        return await _not_found(datasette, request, message)
    base = datasette.urls.database(database)
    svg = chart.draw(data.timeline, data.session.updated_at, lambda row: _bar_link(base, row))
    context = {
        "database": database,
        "page": data,
        "svg": svg,
        "base": base,
        "session_url": lambda session_id: cells.session_url(base, session_id),
        "markdown": cells.markdown_html,
        "format_ms": chart.format_ms,
        "events_url": f"{base}/events?session_id={quote(data.session.id)}&_sort=session_seq",
        "timeline_url": f"{base}/session_timeline?session_id={quote(data.session.id)}"
        "&_sort=started_at",
        "transcript_url": f"{base}/transcript?session_id={quote(data.session.id)}",
    }
    html = await datasette.render_template("leharness_session.html", context, request=request)
    return Response.html(html)


async def _not_found(datasette, request, message: str) -> Response:
    from datasette.utils.asgi import Response

    # A response, not NotFound: Datasette prints a traceback for every exception.
    context = {"ok": False, "error": message, "status": 404, "title": "Not found"}
    html = await datasette.render_template("error.html", context, request=request)
    return Response.html(html, status=404)


def _bar_link(base: str, row: dict) -> str | None:
    if row["kind"] == "subagent" and row.get("child_session_id"):
        return cells.session_url(base, row["child_session_id"])
    if row["kind"] == "tool":
        return f"#call-{row['ref']}"
    if row["kind"] in ("task", "subagent"):
        return f"#task-{row['ref']}"
    return None


# Table pages: Datasette prints every column description above the rows (at 1400x1000 no
# row of `sessions` was visible). They become the headers' tooltips and one folded block;
# a facet asked for twice (the configured one and ?_facet=) is shown once.
TABLE_SCRIPT = """
document.querySelectorAll("th[data-column-description]").forEach(function (th) {
  th.title = th.getAttribute("data-column-description");
});
var descriptions = document.querySelector("dl.column-descriptions");
if (descriptions) {
  var folded = document.createElement("details");
  folded.className = "lh-column-descriptions";
  folded.innerHTML = "<summary>column descriptions</summary>";
  descriptions.parentNode.insertBefore(folded, descriptions);
  folded.appendChild(descriptions);
}
var seen = {};
document.querySelectorAll(".facet-results .facet-info").forEach(function (facet) {
  var column = facet.getAttribute("data-column");
  if (seen[column]) { facet.remove(); } else { seen[column] = true; }
});
"""


@hookimpl
def extra_body_script(template, database, table, view_name, datasette):
    if view_name != "table" or not database:
        return None

    async def script():
        return TABLE_SCRIPT if await _is_leharness(datasette, database) else None

    return script()


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    kind = cells.cell_kind(table, column, row)
    if kind is None or value is None or value == "":
        return None

    async def rendered():
        if not await _is_leharness(datasette, database):
            return None
        return cells.render(kind, value, row, datasette.urls.database(database))

    return rendered()


async def _is_leharness(datasette, database: str) -> bool:
    """True when the database holds leharness's events and sessions tables."""
    known = _known.setdefault(datasette, {})
    if database not in known:
        names = set(await datasette.get_database(database).table_names())
        known[database] = {"events", "sessions"} <= names
    return known[database]
