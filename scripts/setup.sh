#!/usr/bin/env bash
# Create .venv and install searcher with its test tools, one line per step. Installs the CPU build of
# torch first: a plain `torch` requirement would otherwise pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { echo "setup: $*" >&2; }
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "setup failed: $*" >&2; exit 1; }; }
started=$SECONDS
if [ -x .venv/bin/python ]; then step "using the existing .venv"; else step "creating .venv with $PY"; "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if .venv/bin/python -c "import torch" 2>/dev/null; then
  step "torch is installed"
else
  step "installing ${TORCH_SPEC:-torch==2.13.0} (CPU build, about 1 GB; a few minutes)"
  quiet .venv/bin/python -m pip install -q --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
fi
step "installing searcher with its dependencies and test tools (pip install -e .[test])"
quiet .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# The Milvus 2.3.5 standalone server binary, for tests/test_milvus.py. --no-deps: the package is the
# binary and its launcher; its only dependency (extra `client`) pins pymilvus<2.4, older than ours.
step "installing the Milvus server used by the tests"
quiet .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "milvus==2.3.5"
# Debian's Chromium for the search page's browser tests (tests/test_web.py; Playwright drives it through
# executable_path: no browser download). Installed when running as root and missing; elsewhere those
# tests say in one line that they are skipped.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing Debian's chromium for the browser tests (apt-get)"
    quiet apt-get update
    DEBIAN_FRONTEND=noninteractive quiet apt-get install -y --no-install-recommends chromium chromium-driver
  else
    step "chromium is not installed and this is not root: tests/test_web.py will be skipped"
  fi
fi
step "done in $((SECONDS - started))s; the command is .venv/bin/searcher"
