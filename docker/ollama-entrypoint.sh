#!/bin/sh
# Entry point of the Ollama container: start the server, pull the default model once
# (kept in the ollama volume, so later starts skip the download), then stay in the
# foreground with the server.
set -eu

ollama serve &
server=$!

tries=0
until ollama list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "ollama did not start in 60 s" >&2
    exit 1
  fi
  sleep 1
done

model="${OLLAMA_PULL_MODEL:-llama3.2:3b}"
if ! ollama list | grep -q "^${model}"; then
  echo "pulling ${model} (first start only)"
  ollama pull "$model"
fi

wait "$server"
