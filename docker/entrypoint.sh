#!/bin/sh
# Entry point of the aift container: TensorBoard on loopback (the app serves it at
# /tensorboard behind AIFT_API_KEY) and, when JUPYTER=1, JupyterLab (8888) with
# AIFT_API_KEY as its token, in the background; then the command (by default
# `aift serve`) in the foreground, so the container lives and dies with the server.
# tini reaps children.
set -eu

mkdir -p "${AIFT_WORKSPACE:-/data/workspace}" "${AIFT_CACHE_DIR:-/data/cache}"

aift tensorboard --host 127.0.0.1 --port "${TENSORBOARD_PORT:-6006}" \
  --path-prefix /tensorboard >/dev/null 2>&1 &
export AIFT_TENSORBOARD_URL="${AIFT_TENSORBOARD_URL:-http://127.0.0.1:${TENSORBOARD_PORT:-6006}}"

if [ "${JUPYTER:-0}" = "1" ]; then
  if [ -z "${AIFT_API_KEY:-}" ]; then
    echo "JUPYTER=1 needs AIFT_API_KEY: JupyterLab uses it as its token" >&2
    exit 2
  fi
  jupyter lab --ip 0.0.0.0 --port "${JUPYTER_PORT:-8888}" --no-browser \
    --IdentityProvider.token="$AIFT_API_KEY" \
    --ServerApp.root_dir="${AIFT_WORKSPACE:-/data/workspace}" \
    >/dev/null 2>&1 &
fi

exec "$@"
