"""Secret redaction: what it costs to clean tool output. `redact` on a 100 KiB
tool result with four secrets in the environment, and a 200 MB command output
streamed through the bash OutputSink (64 KiB pipe chunks) with and without
secrets to look for."""

from __future__ import annotations

import os
import time

from leharness.tools import bash, redact

from . import Figure, timed

SECRETS = {
    "OPENAI_API_KEY": "sk-bench-0123456789abcdefghij",
    "GITHUB_TOKEN": "ghp_bench0123456789abcdefghij",
    "AWS_SECRET": "aws-bench-secret-0123456789",
    "STRIPE_KEY": "sk_live_bench_0123456789",
}


def stream_mb_per_s(total_mb: int, with_secrets: bool) -> float:
    saved = {name: os.environ.pop(name, None) for name in SECRETS}
    if with_secrets:
        os.environ.update(SECRETS)
    try:
        sink = bash.OutputSink()
        chunk = b"ordinary output line with nothing secret in it, see the logs\n" * 1024
        started = time.perf_counter()
        for _ in range(total_mb * 16):
            sink.write(chunk)
        sink.text()
        return total_mb / (time.perf_counter() - started)
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def run(quick: bool) -> list[Figure]:
    found = redact.secrets(SECRETS)
    text = ("ordinary output line with nothing secret in it\n" * 2200)[: 100 * 1024]
    text += SECRETS["GITHUB_TOKEN"]
    per_call = timed(lambda: redact.redact(text, found), 50 if quick else 300)
    per_call = [ms * 1000 for ms in per_call]  # µs
    total = 50 if quick else 200
    repeat = 3 if quick else 5
    plain = [stream_mb_per_s(total, False) for _ in range(repeat)]
    cleaned = [stream_mb_per_s(total, True) for _ in range(repeat)]
    ratio = sorted(cleaned)[len(cleaned) // 2] / sorted(plain)[len(plain) // 2]
    return [
        Figure(
            "redact() on a 100 KiB tool output, 4 secrets",
            "µs",
            per_call,
            target="< 1000 µs",
            met=sorted(per_call)[len(per_call) // 2] < 1000,
        ),
        Figure(
            f"{total} MB through OutputSink, no secrets set",
            "MB/s",
            plain,
        ),
        Figure(
            f"{total} MB through OutputSink, 4 secrets redacted",
            "MB/s",
            cleaned,
            target="≥ 100 MB/s (faster than commands print)",
            met=sorted(cleaned)[len(cleaned) // 2] >= 100,
            note=f"{ratio:.0%} of the speed without secrets",
        ),
    ]
