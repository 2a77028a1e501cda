#!/usr/bin/env bash
# The optional Docker stage's Harbor job, with Harbor's own Docker environment.
# Runs inside `unshare -n -m` (no network but the loopback it brings up; the
# daemon's mounts vanish with the namespace): a private dockerd (no iptables, no
# bridge) on its own socket and data root, the Debian base image imported from
# docker_setup.sh's tarball as debian:12, the scripted model server on 127.0.0.1,
# which the trial containers reach through `network_mode: host`.
#   usage: unshare -n -m bash docker_jobs.sh HARBOR_PYTHON CHECKOUT OUT WHEELHOUSE PLUGINS BASE
set -euo pipefail
PY=$1 CHECKOUT=$2 OUT=$3 WHEELHOUSE=$4 PLUGINS=$5 BASE=$6
ip link set lo up
# Short paths: containerd's socket lives under the exec root (108-byte socket paths).
RUN=$(mktemp -d /tmp/lh-docker.XXXX)
mkdir -p "$RUN/config/cli-plugins" "$OUT/docker"
ln -s "$PLUGINS/docker-compose" "$RUN/config/cli-plugins/docker-compose"
export DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/config DOCKER_BUILDKIT=0
export PATH=/usr/bin:/usr/sbin:$PATH  # Debian's docker CLI, the daemon's own version
dockerd --iptables=false --ip-forward=false --bridge=none -H "$DOCKER_HOST" \
    --data-root "$RUN/data" --exec-root "$RUN/exec" --pidfile "$RUN/docker.pid" \
    >"$OUT/docker/dockerd.log" 2>&1 &
daemon=$!
server=
stop() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    # The daemon's netns bind mounts under the exec root: lazily unmounted, then removed.
    grep -o " $RUN/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n 1 umount -l || true
    rm -rf "$RUN" || true
}
trap stop EXIT
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null
docker import "$BASE" debian:12 >&2
docker compose version >&2

export PYTHONPATH=$CHECKOUT HARBOR_TELEMETRY=0 LITELLM_LOCAL_MODEL_COST_MAP=True
"$PY" "$CHECKOUT/tests/harbor_stage/model_server.py" "$OUT/base_url" &
server=$!
for _ in $(seq 100); do [ -s "$OUT/base_url" ] && break; sleep 0.1; done
export OPENAI_BASE_URL=$(cat "$OUT/base_url") OPENAI_API_KEY=scripted-key
cd "$CHECKOUT"
"$(dirname "$PY")/harbor" run -e docker -o "$OUT/jobs" -n 2 -k 2 -y -q \
    -p "$OUT/datasets/make-file" --job-name docker \
    -a leharness.harbor:Leharness -m openai/scripted --ak "wheelhouse=$WHEELHOUSE"
