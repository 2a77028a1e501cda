#!/usr/bin/env bash
# The Harbor jobs of the stage. Runs inside `unshare -n` (no network but the
# loopback it brings up): the scripted model server on 127.0.0.1 answers every
# lh trial; the chroot environment runs the trials.
#   usage: unshare -n bash jobs.sh HARBOR_PYTHON CHECKOUT OUT WHEELHOUSE
set -euo pipefail
PY=$1 CHECKOUT=$2 OUT=$3 WHEELHOUSE=$4
ip link set lo up
export PYTHONPATH=$CHECKOUT HARBOR_TELEMETRY=0 LITELLM_LOCAL_MODEL_COST_MAP=True
export CHROOT_ENV_ROOTS=$OUT/roots
mkdir -p "$OUT/roots"
"$PY" "$CHECKOUT/tests/harbor_stage/model_server.py" "$OUT/base_url" &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 100); do [ -s "$OUT/base_url" ] && break; sleep 0.1; done
export OPENAI_BASE_URL=$(cat "$OUT/base_url") OPENAI_API_KEY=scripted-key
HARBOR=$(dirname "$PY")/harbor
common=(-e tests.harbor_stage.chroot_env:ChrootEnvironment -o "$OUT/jobs" -n 2 -k 3 -y -q)
lh=(-a leharness.harbor:Leharness -m openai/scripted --ak "wheelhouse=$WHEELHOUSE")
cd "$CHECKOUT"
"$HARBOR" run "${common[@]}" -p "$OUT/datasets/make-file" --job-name oracle -a oracle
"$HARBOR" run "${common[@]}" -p "$OUT/datasets/make-file" --job-name lh "${lh[@]}"
"$HARBOR" run "${common[@]}" -p "$OUT/datasets/nothing" --job-name nothing "${lh[@]}"
