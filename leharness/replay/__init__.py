"""Recorded models and re-runs: `lh demo`, `lh replay` and the tests' scripted loop.

`model.py` holds the one recorded model; `rerun.py` re-runs a stored session
against the current harness, `served_tasks.py` stands in for its background
tasks and `divergence.py` finds where the re-run first differs. This layer may
import the loop and below; nothing below imports it. Import the modules
directly; this __init__ stays empty.
"""
