#!/bin/sh
# Entry point of the aift container: TensorBoard (6006) and, when JUPYTER_TOKEN is set,
# JupyterLab (8888) in the background, then the command (by default `aift serve`) in
# the foreground, so the container lives and dies with the server. tini reaps children.
set -eu

mkdir -p "${AIFT_WORKSPACE:-/data/workspace}" "${AIFT_CACHE_DIR:-/data/cache}"

aift tensorboard --host 0.0.0.0 --port "${TENSORBOARD_PORT:-6006}" >/dev/null 2>&1 &

if [ -n "${JUPYTER_TOKEN:-}" ]; then
  jupyter lab --ip 0.0.0.0 --port "${JUPYTER_PORT:-8888}" --no-browser \
    --ServerApp.token="$JUPYTER_TOKEN" --ServerApp.root_dir="${AIFT_WORKSPACE:-/data/workspace}" \
    >/dev/null 2>&1 &
fi

exec "$@"
