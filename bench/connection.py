"""One connection per session, over TLS: `lh` runs of 1 and 10 tool turns of a
shell `echo` against the scripted server serving https (a self-signed
certificate trusted through SSL_CERT_FILE) and plain http, interleaved in one
run. Connections the server accepted per run, and the per-turn overhead
(T10 - T1) / 9 over https against http: with one kept-alive connection TLS
costs one handshake per session, not one per model call."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from leharness.testing import ScriptedServer
from leharness.testing.tls import self_signed

from . import Figure, ensure_bytecode, measure
from .oneshot import echo_turns

LH = str(Path(sys.executable).with_name("lh"))


def one_run(turns: int, tls: tuple[str, str] | None) -> tuple[float, float, int]:
    """(wall ms, CPU ms, connections) of one `lh` process making `turns` tool turns."""
    with (
        tempfile.TemporaryDirectory() as home,
        ScriptedServer(responder=echo_turns(turns), tls=tls) as server,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LEHARNESS_"))}
        env.update(
            LEHARNESS_HOME=home,
            OPENAI_API_KEY="bench",
            OPENAI_BASE_URL=server.base_url,
            LEHARNESS_MAX_STEPS=str(turns + 5),
        )
        if tls:
            env["SSL_CERT_FILE"] = tls[0]
        done = measure([LH, "run the echoes"], env, home)
        if done.code != 0 or len(server.requests) != turns + 1:
            raise RuntimeError(f"lh exited {done.code} after {len(server.requests)} requests")
        return done.wall_ms, done.cpu_ms, server.connections


def run(quick: bool) -> list[Figure]:
    ensure_bytecode()
    repeat = 3 if quick else 7
    with tempfile.TemporaryDirectory() as folder:
        cert, key = self_signed(Path(folder))
        tls = (str(cert), str(key))
        wall: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        connections: dict[str, list[float]] = {"http": [], "https": []}
        for _ in range(repeat):
            for scheme, option in (("http", None), ("https", tls)):
                for turns in (1, 10):
                    w, c, opened = one_run(turns, option)
                    wall.setdefault((scheme, turns), []).append(w)
                    cpu.setdefault((scheme, turns), []).append(c)
                    if turns == 10:
                        connections[scheme].append(opened)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731

    def per_turn(samples: dict, scheme: str) -> list[float]:
        return [(b - a) / 9 for a, b in zip(samples[scheme, 1], samples[scheme, 10], strict=True)]

    figures = [
        Figure(
            f"connections opened by a 10-turn run ({scheme}, 11 requests)",
            "connections",
            connections[scheme],
            "1",
            median(connections[scheme]) == 1,
        )
        for scheme in ("http", "https")
    ]
    for scheme in ("http", "https"):
        figures += [
            Figure(
                f"{scheme}: per-turn overhead (T10 - T1) / 9, wall", "ms", per_turn(wall, scheme)
            ),
            Figure(f"{scheme}: per-turn overhead (T10 - T1) / 9, CPU", "ms", per_turn(cpu, scheme)),
        ]
    ratio = [
        a / b for a, b in zip(per_turn(cpu, "https"), per_turn(cpu, "http"), strict=True) if b > 0
    ]
    figures.append(
        Figure(
            "per-turn CPU over https ÷ over http",
            "×",
            ratio,
            note="TLS adds its record encryption to each turn, not a handshake",
        )
    )
    figures.append(Figure("https: 1-turn run, wall", "ms", wall["https", 1]))
    return figures
