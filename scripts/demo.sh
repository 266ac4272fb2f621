#!/usr/bin/env bash
# Set everything up, index the documentation that ships with this repository (docs/ and README.md),
# and ask it three questions a new user asks; the answers come back with file:line and heading.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "demo: indexing docs/ and README.md into the index named 'demo' (the first run loads and exports the model)" >&2
.venv/bin/searcher index docs --name demo
.venv/bin/searcher index README.md --name demo --quiet
for question in "what happens if indexing is killed halfway" "which file formats can it read" \
                "how do I search Chinese documents"; do
  echo "demo: searcher search \"$question\" -k 3" >&2
  .venv/bin/searcher search "$question" --name demo -k 3
done
