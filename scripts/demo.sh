#!/usr/bin/env bash
# Set everything up, index the documentation that ships with this repository, and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/searcher index docs --name demo
.venv/bin/searcher search "what happens if indexing is killed halfway" --name demo -k 3
