"""The composition root: what builds a running session (settings, model client, locks,
MCP) and the checks and repairs behind `lh doctor`, for the CLI, the tests, the
benchmarks and any future API. Nothing here parses arguments or renders: that is the
CLI's, which calls in here."""
