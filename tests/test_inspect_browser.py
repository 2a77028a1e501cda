"""`lh inspect` for real: a server process on 127.0.0.1, read over HTTP and by
headless Chromium (Debian's, driven by Playwright), which checks the
transcript and the timeline's bars and saves a screenshot."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e_helpers import LH
from .test_inspector import scripted  # noqa: F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Keeps the cookie the token URL sets, as a browser would.
OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())


def fetch(url: str) -> tuple[int, str]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def printed_url(process: subprocess.Popen) -> str:
    """The URL `lh inspect` printed: `Inspecting … at URL  (Ctrl-C to stop)`."""
    line = process.stdout.readline()
    if " at " not in line:
        process.kill()
        pytest.fail(f"lh inspect did not start: {line!r} {process.communicate()}")
    return line.split(" at ")[1].split()[0]


@pytest.fixture
def server(scripted) -> Iterator[tuple[str, str, str, str]]:  # noqa: F811
    """(base URL, parent id, child id, the printed URL with its token) of a running
    `lh inspect`, stopped afterwards. `fetch` carries the token's cookie from then on."""
    parent, child = scripted
    port = free_port()
    process = subprocess.Popen(
        [LH, "inspect", "--no-open", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:  # the server is stopped whatever happens, a failed check included
        url = printed_url(process)
        base = f"http://127.0.0.1:{port}"
        assert url.startswith(base + "/?token=")
        deadline = time.monotonic() + 30
        while True:
            try:
                if fetch(url)[0] == 200:  # sets the cookie
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"lh inspect did not start: {process.poll()}")
            time.sleep(0.1)
        yield base, parent, child, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_lh_inspect_serves_the_live_database_and_stops_cleanly(server):
    base, parent, _, _ = server
    status, html = fetch(f"{base}/sessions/-/session/{parent}")
    assert status == 200 and 'id="call-t1"' in html
    assert fetch(f"{base}/sessions/transcript?session_id={parent}")[0] == 200
    # Datasette's default mode, not --immutable: lh may be writing meanwhile.
    databases = json.loads(fetch(f"{base}/-/databases.json")[1])
    assert [(d["name"], d["is_mutable"]) for d in databases] == [("sessions", True)]


def test_a_busy_port_is_a_one_line_error(db):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [LH, "inspect", "--no-open", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: port {port} is in use: pick another with --port"


def browser_or_skip():
    required = os.environ.get("LEHARNESS_REQUIRE_BROWSER") == "1"
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing and LEHARNESS_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    return sync_playwright


@pytest.mark.serial  # Chromium: a heavy process with its own timeouts
def test_headless_chromium_shows_the_transcript_and_the_timeline(server, tmp_path):
    sync_playwright = browser_or_skip()
    base, parent, child, url = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            refused = page.goto(f"{base}/sessions/-/session/{parent}", wait_until="load")
            assert refused.status == 403 and "needs its token" in page.content()
            page.goto(url, wait_until="load")  # the printed URL: its token sets a cookie
            page.goto(f"{base}/sessions/-/session/{parent}", wait_until="load")
            assert page.locator("h1.lh-title").inner_text() == "parent task: **find** <b>files</b>"
            transcript = page.locator("article.lh-msg").all_inner_texts()
            assert any("All done: <script>alert(1)</script>" in text for text in transcript)
            call = page.locator("#call-t1")
            assert "command: echo hi" in call.locator("summary").inner_text()
            assert not call.locator(".lh-result").is_visible()  # folded
            call.locator("summary").click()
            assert call.locator(".lh-result").inner_text().startswith("hi")
            bars = page.locator("svg.lh-timeline rect.lh-bar")
            kinds = [bars.nth(i).get_attribute("data-kind") for i in range(bars.count())]
            assert sorted(set(kinds)) == ["model", "step", "subagent", "task", "tool"]
            assert kinds.count("tool") == 4 and kinds.count("subagent") == 1
            for i in range(bars.count()):
                box = bars.nth(i).bounding_box()
                assert box is not None and box["width"] >= 1 and box["height"] > 5
            page.screenshot(path=str(tmp_path / "session.png"), full_page=True)
            # The subagent's bar leads to the child's page, which links back.
            page.locator("svg.lh-timeline a:has(rect[data-kind='subagent'])").click()
            page.wait_for_url(f"**/sessions/-/session/{child}")
            assert "summary from the child" in page.content()
            assert page.locator("li.lh-parent a").get_attribute("href").endswith(parent)
        finally:
            browser.close()
    assert (tmp_path / "session.png").stat().st_size > 10_000


def test_lh_inspect_session_prints_and_serves_that_sessions_page(scripted):  # noqa: F811
    parent, _ = scripted
    process = subprocess.Popen(
        [LH, "inspect", "--no-open", "--port", "0", parent[:22]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = printed_url(process)
        page, token = url.split("?token=")
        assert url.startswith("http://127.0.0.1:") and page.endswith(
            f"/sessions/-/session/{parent}"
        )
        assert len(token) >= 32
        status, html = fetch(url)
        assert status == 200 and "parent task: <strong>find</strong>" in html
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_lh_inspect_listens_on_loopback_unless_host_is_given_and_then_warns(scripted):  # noqa: F811
    parent, _ = scripted
    process = subprocess.Popen(
        [LH, "inspect", "--no-open", "--port", "0", "--host", "0.0.0.0", parent],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        warning = process.stderr.readline()
        assert warning.startswith("warning: serving on 0.0.0.0: anyone who can reach it")
        url = printed_url(process)
        assert fetch(url)[0] == 200  # still served (here reached over loopback)
    finally:
        process.terminate()
        process.wait(timeout=10)
    quiet = subprocess.Popen(
        [LH, "inspect", "--no-open", "--port", "0", parent],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = printed_url(quiet)
        assert url.startswith("http://127.0.0.1:")
        with socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0]))):
            pass
    finally:
        quiet.terminate()
        _out, err = quiet.communicate(timeout=10)
    assert "warning" not in err


def test_lh_inspect_of_an_unknown_session_is_a_one_line_error(db):
    result = subprocess.run(
        [LH, "inspect", "--no-open", "--port", "0", "NOPE"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "no session 'NOPE'" in result.stderr


@pytest.mark.serial  # Chromium: a heavy process with its own timeouts
def test_first_screens_show_rows_and_the_timeline(server, tmp_path):
    """At 1400x1000 the sessions table shows a row and a session page its timeline without
    scrolling; lists keep their bullets; a facet asked for twice shows once."""
    sync_playwright = browser_or_skip()
    from contextlib import closing

    from leharness import store

    base, parent, _, url = server
    with closing(store.open_store()) as conn:
        listed = store.create_session(conn)
        store.append(conn, listed, {"type": "invocation.received", "text": "- one\n- two"})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="load")  # the printed URL's token sets the cookie
            page.goto(f"{base}/sessions/sessions", wait_until="load")
            page.screenshot(path=str(tmp_path / "sessions.png"))
            row = page.locator("table.rows-and-columns tbody tr").first.bounding_box()
            assert row is not None and row["y"] + row["height"] <= 1000, row
            header = page.locator("table.rows-and-columns th").first
            assert header.get_attribute("data-column") == "title"
            assert header.get_attribute("title")  # its description, as a tooltip
            assert not page.locator("dl.column-descriptions").is_visible()  # folded
            page.goto(f"{base}/sessions/-/session/{parent}", wait_until="load")
            page.screenshot(path=str(tmp_path / "session.png"))
            chart = page.locator("svg.lh-timeline").bounding_box()
            assert chart is not None and chart["y"] < 1000, chart
            page.goto(f"{base}/sessions/-/session/{listed}", wait_until="load")
            bullet = page.locator(".lh-md li").first.evaluate(
                "li => getComputedStyle(li).listStyleType"
            )
            assert bullet == "disc"
            page.goto(f"{base}/sessions/events?_facet=type", wait_until="load")
            assert page.locator(".facet-info[data-column='type']").count() == 1
        finally:
            browser.close()
    assert (tmp_path / "sessions.png").stat().st_size > 10_000
    assert (tmp_path / "session.png").stat().st_size > 10_000
