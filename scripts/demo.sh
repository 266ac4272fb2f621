#!/usr/bin/env bash
# Set everything up, index the documentation that ships with this repository, and search it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "demo: indexing docs/ into the index named 'demo' (the first run also loads and exports the model)" >&2
.venv/bin/searcher index docs --name demo
for question in "what happens if indexing is killed halfway"; do
  echo "demo: searcher search \"$question\"" >&2
  .venv/bin/searcher search "$question" --name demo -k 3
done
