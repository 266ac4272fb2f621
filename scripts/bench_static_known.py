"""Known items with the static model: does a search still find the document someone remembers?

The quality issue's known-item check (``searcher.search.evaluation.known_items``: a word of one
document only plus two common words of it; a 6–10-word phrase copied from one document) run in the
default (hybrid) mode on the evaluation indexes that ``scripts/bench_static.py`` keeps under its
--root (``eval-<collection>-<model>``; built there if missing), static model against the default.

    python scripts/bench_static_known.py /work/shared/data/cranfield /work/shared/data/scifact \\
        --root /tmp/bench-static [--known 60] [--out docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import benchlib  # noqa: E402
from bench_static import DEFAULT, MODELS  # noqa: E402

from searcher import Searcher  # noqa: E402
from searcher.embed import static  # noqa: E402
from searcher.search.evaluation import known_item_shares, known_items, load_collection  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("collections", nargs="+", type=Path, help="BEIR-style collections")
    ap.add_argument("--root", type=Path, default=Path("/tmp/bench-static"), help="bench_static.py's --root")
    ap.add_argument("--known", type=int, default=60, help="known items of each kind per collection")
    ap.add_argument("--out", type=Path, help="markdown file whose bench_static_known section is replaced")
    a = ap.parse_args()
    os.environ[static.CACHE_ENV] = str(a.root / "cache")          # bench_static.py's cache: its table
    lines = ["## Known items with the static model (`scripts/bench_static_known.py`)", "",
             f"Command: `{benchlib.command_line('scripts/bench_static_known.py', sys.argv[1:])}`  ",
             f"Machine: {benchlib.machine_line()}; code: {benchlib.code_version(ROOT)}. Default (hybrid) mode, "
             f"{a.known} known items of each kind per collection; share found first (and within the top 3).", "",
             "| collection | kind | default model | static | static / default |", "|---|---|---|---|---|"]
    for folder in a.collections:
        coll = load_collection(folder)
        items = known_items(coll.corpus, a.known)
        shares = {}
        for model in MODELS:
            with Searcher(a.root / f"eval-{coll.name}-{model}", model=model) as s:
                s.add([t for _, t in coll.corpus], ids=[d for d, _ in coll.corpus])
                shares[model] = known_item_shares(
                    lambda q: [h.id for h in s.search(q, k=10, group_by_file=True)], items)  # noqa: B023
            print(coll.name, model, shares[model], flush=True)
        for kind in ("rare", "phrase"):
            d, st = (shares[m][f"{kind}@1"] for m in (DEFAULT, MODELS[1]))
            d3, st3 = (shares[m][f"{kind}@3"] for m in (DEFAULT, MODELS[1]))
            lines.append(f"| {coll.name} | {kind} | {d:.3f} ({d3:.3f}) | {st:.3f} ({st3:.3f}) | "
                         f"{st / d if d else float('nan'):.3f} |")
    if a.out:
        benchlib.write_section(a.out, "bench_static_known", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
