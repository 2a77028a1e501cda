#!/usr/bin/env bash
# Prepares what the Harbor stage needs, cached outside the checkout, and prints
# two lines: the Harbor venv's python, and the wheelhouse of lh's dependencies.
#   Python 3.13   built once by python313.sh (PY313_PREFIX, default /opt/py313)
#   Harbor venv   $LEHARNESS_HARBOR_CACHE/harbor-venv (default /var/cache/leharness)
#   wheelhouse    $LEHARNESS_HARBOR_CACHE/wheelhouse-<hash of pyproject.toml>
# On a fresh machine this takes ~6 minutes (mostly building Python); then seconds.
# The stage runs the checkout's own code (PYTHONPATH), never a stale copy.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)
CACHE=${LEHARNESS_HARBOR_CACHE:-/var/cache/leharness}
HOST_PY=${HOST_PY:-python3}
mkdir -p "$CACHE"
# Stage runs at the same time (pytest workers, other checkouts) build into these same
# paths one after the other: the next waits here, then finds everything ready.
exec 9>"$CACHE/.setup.lock"
flock 9
PY=$(bash "$HERE/python313.sh" | tail -n 1)

VENV=$CACHE/harbor-venv
if ! "$VENV/bin/python" -c 'import harbor, leharness, click_default_group' 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$CHECKOUT[harbor]" >&2
fi

# lh's dependencies as wheels for the trials' Python (the host's python3, which
# the chroot environment shares), rebuilt when pyproject.toml changes.
KEY=$(sha256sum "$CHECKOUT/pyproject.toml" | cut -c1-12)
WHEELS=$CACHE/wheelhouse-$KEY
if [ ! -f "$WHEELS/.complete" ]; then
    rm -rf "$WHEELS"
    "$HOST_PY" -m pip wheel -q --disable-pip-version-check -w "$WHEELS" "$CHECKOUT" >&2
    rm -f "$WHEELS"/leharness-*.whl
    touch "$WHEELS/.complete"
fi
echo "$VENV/bin/python"
echo "$WHEELS"
