#!/usr/bin/env bash
# Build (once) and install llama-cpp-python so that it runs on any x86-64 CPU.
#
# llama.cpp's default build (GGML_NATIVE=ON) compiles for the build machine's CPU: the
# binary dies of SIGILL on a CPU without those instructions, and even on the build machine
# when it advertises a family it cannot execute (AMX under some hypervisors). This build
# turns native off and compiles every x86 CPU variant as its own loadable backend
# (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS); aift picks, at run time, the fastest variant
# that a probe in a child process really executes (aift/native/llamacpp_backend.py).
#
# The wheel is kept in a folder named after the version and these build options, and pip
# is told never to cache or reuse a wheel of its own: a natively built wheel from another
# machine can never be picked up by mistake.
#
# usage: scripts/llama-cpp-wheel.sh PIP [WHEEL_CACHE_DIR]
# LLAMA_CMAKE_EXTRA adds CMake options (the CUDA image: -DGGML_CUDA=ON).
set -euo pipefail
PIP=${1:?usage: llama-cpp-wheel.sh PIP [WHEEL_CACHE_DIR]}
VERSION=0.3.36  # keep in step with pyproject.toml
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF ${LLAMA_CMAKE_EXTRA:-}"
KEY=$(printf '%s %s' "$VERSION" "$CMAKE_ARGS" | sha256sum | cut -c1-12)
CACHE=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/aift/wheels}/llama-cpp-python-$VERSION-portable-$KEY
if ! ls "$CACHE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION for every x86-64 CPU (several minutes, once)"
  mkdir -p "$CACHE.partial"
  CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$PIP" wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
    -w "$CACHE.partial" "llama-cpp-python==$VERSION"
  rm -rf "$CACHE" && mv "$CACHE.partial" "$CACHE"
fi
# replace any other build of the same version, then add its own dependencies
"$PIP" install -q --no-cache-dir --no-deps --force-reinstall "$CACHE"/llama_cpp_python-*.whl
"$PIP" install -q --no-cache-dir "$CACHE"/llama_cpp_python-*.whl
