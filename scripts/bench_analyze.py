"""Measure the analyses (similar, duplicates, outliers, topics, map) on real labels and write the
tables to docs/benchmarks.md (section ``bench_analyze``).

- similar: co-relevance on cranfield and scifact — for each query with at least two relevant
  documents, each relevant document's ``similar`` list is judged by the query's other relevant
  documents (nDCG@10); baselines: mean-chunk-vector cosine, BM25 more-like-this (25 top tf-idf terms).
- duplicates, semantic tier: MRPC train pairs — average precision, F1 at the default threshold
  and at the best one; baselines: MiniLM cosine, word-trigram Jaccard.
- duplicates, near tier: edited versions of real documents (sentence dropped/inserted/reordered,
  shuffled, re-wrapped, truncated to half) against the originals, and every candidate pair of
  distinct originals (each document's 10 nearest by meaning).
- outliers: 2 % and 3 % of one collection mixed into the other, average precision, three draws.
- topics: cranfield + scifact + MRPC sentences, NMI between topics and source.
- map: seconds for 10,000 documents; a PNG of cranfield for docs/.
- duplicates speed: 10,000 and 100,000 chunks.

The collections are indexed once into --work (Searcher.add; later runs reuse the indexes).
"""
from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

from searcher import Searcher  # noqa: E402
from searcher.analyze import (  # noqa: E402
    corpus_map,  # noqa: E402
    duplicates,
    outliers,
    topics,
)
from searcher.analyze.similar import TERMS, top_terms  # noqa: E402
from searcher.analyze.units import Units, neighbours, normalise  # noqa: E402
from searcher.ingest.chunking import sentences  # noqa: E402
from searcher.search.evaluation import load_collection, ndcg  # noqa: E402
from searcher.store.keyword import fts_tokens  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DRAWS = 5                      # random mixes per outlier setting


def collection_index(name: str, data: Path, work: Path) -> Searcher:
    s = Searcher(work / f"index-{name}")
    if not s.exists:
        col = load_collection(data / name)
        s.add([t for _, t in col.corpus], [d for d, _ in col.corpus])
    return s


def units_of(s: Searcher) -> Units:
    return s._units(None)          # every document with its mean vector (the analyses' own input)


# ---- similar -------------------------------------------------------------------------------------
def bench_similar(name: str, s: Searcher, data: Path) -> dict[str, float]:
    col = load_collection(data / name)
    units = units_of(s)
    pos = {d: i for i, d in enumerate(units.ids)}
    store = s._open_store()

    def mean_cosine(d: str) -> list[str]:
        sims = units.vectors @ units.vectors[pos[d]]
        sims[pos[d]] = -2
        return [units.ids[i] for i in np.argsort(-sims)[:10]]

    def more_like_this(d: str) -> list[str]:
        tokens = fts_tokens(" ".join(top_terms(store, units.terms[pos[d]].split(), TERMS)))
        scores = dict(store.keyword_search(tokens, 100))
        rows = store.analysis_chunks(chunk_ids=list(scores))[0]
        best: dict[str, float] = {}
        for r in rows:
            if r.doc_id != d:
                best[r.doc_id] = max(best.get(r.doc_id, -1e9), scores[r.id])
        return sorted(best, key=lambda x: -best[x])[:10]

    methods = {"mean-vector cosine (baseline)": mean_cosine, "BM25 more-like-this (baseline)": more_like_this,
               "searcher similar": lambda d: [x.id for x in s.similar(d, k=10)]}
    scores: dict[str, list[float]] = {m: [] for m in methods}
    for rels in col.qrels.values():
        rel = {d: g for d, g in rels.items() if g > 0 and d in pos}
        if len(rel) < 2:
            continue
        for d in rel:
            judge = {x: g for x, g in rel.items() if x != d}
            for m, f in methods.items():
                scores[m].append(ndcg(f(d), judge, 10))
    return {m: float(np.mean(v)) for m, v in scores.items()} | {"lists": len(scores["searcher similar"])}


# ---- MRPC: semantic tier -------------------------------------------------------------------------
def mrpc(data: Path, s: Searcher, work: Path) -> tuple[np.ndarray, list[str], list[str], np.ndarray, np.ndarray]:
    lines = gzip.open(data / "mrpc-train" / "pairs.tsv.gz", "rt", encoding="utf-8-sig").read().splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    y = np.array([int(r[0]) for r in rows])
    a, b = [r[3] for r in rows], [r[4] for r in rows]
    cache = work / "mrpc-vectors.npz"
    if cache.exists():
        z = np.load(cache)
        va, vb = z["a"], z["b"]
    else:
        encoder = s._encoder_for(s._read_config())
        va, vb = normalise(encoder.encode(a)), normalise(encoder.encode(b))
        np.savez(cache, a=va, b=vb)
    return y, a, b, va, vb


def bench_semantic(y, a, b, va, vb) -> dict[str, tuple[float, float, float, float]]:
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve

    n = len(a)
    texts = a + b
    i, j = np.arange(n), np.arange(n) + n
    vectors = np.vstack([va, vb])
    _, ours = duplicates.pair_scores(texts, vectors, i, j)
    cosine = np.einsum("ij,ij->i", va, vb)
    word = re.compile(r"\w+")

    def trigram_jaccard(x: str, z: str) -> float:
        def grams(t: str) -> set:
            w = word.findall(t.lower())
            return {tuple(w[k:k + 3]) for k in range(max(1, len(w) - 2))}
        gx, gz = grams(x), grams(z)
        return len(gx & gz) / max(1, len(gx | gz))

    trigram = np.array([trigram_jaccard(x, z) for x, z in zip(a, b)])
    out = {}
    for name, score, default in (("MiniLM cosine (baseline)", cosine, None),
                                 ("word-trigram Jaccard (baseline)", trigram, None),
                                 ("searcher semantic score", ours, duplicates.SEMANTIC_THRESHOLD)):
        p, r, t = precision_recall_curve(y, score)
        f = 2 * p * r / np.maximum(p + r, 1e-12)
        best = int(np.argmax(f[:-1]))
        at_default = f1_score(y, score >= default) if default is not None else float("nan")
        out[name] = (average_precision_score(y, score), float(f[best]), float(t[best]), at_default)
    return out


# ---- near tier -------------------------------------------------------------------------------------
def edits(text: str, other: str, rng: random.Random) -> dict[str, str]:
    s = [text[x:y] for x, y in sentences(text, 0, len(text))]
    out: dict[str, str] = {}
    if len(s) >= 4:
        drop = set(rng.sample(range(len(s)), max(1, len(s) // 10)))
        out["sentences dropped (10 %)"] = " ".join(x for k, x in enumerate(s) if k not in drop)
        i, j = rng.sample(range(len(s)), 2)
        swapped = list(s)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        out["two sentences swapped"] = " ".join(swapped)
        shuffled = list(s)
        rng.shuffle(shuffled)
        out["all sentences shuffled"] = " ".join(shuffled)
    others = [other[x:y] for x, y in sentences(other, 0, len(other))]
    inserted = list(s)
    inserted.insert(rng.randrange(len(s) + 1), rng.choice(others))
    out["a sentence inserted"] = " ".join(inserted)
    words, lines, line = text.split(), [], []
    for w in words:
        line.append(w)
        if len(" ".join(line)) > 60:
            lines.append(" ".join(line))
            line = []
    out["re-wrapped, upper case"] = "\n".join(lines + [" ".join(line)]).upper()
    out["truncated to half"] = text[:len(text) // 2]
    return out


def shared_text(x: str, z: str, run: int = 8) -> tuple[int, float]:
    """The longest word run two texts share verbatim, and the share of the shorter text in shared runs ≥ ``run``.

    Evidence, independent of the near score, of whether two "distinct" documents of a collection hold the
    same text (a record that swallowed another's abstract, the same paper entered twice).
    """
    import difflib
    import re

    a, b = (re.findall(r"\w+", t.lower()) for t in (x, z))
    blocks = difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    return max(m.size for m in blocks), sum(m.size for m in blocks if m.size >= run) / max(1, min(len(a), len(b)))


def bench_near(name: str, s: Searcher, data: Path) -> dict[str, object]:
    col = load_collection(data / name)
    texts = dict(col.corpus)
    units = units_of(s)
    rng = random.Random(0)
    originals = rng.sample(units.ids, 300)
    kinds: dict[str, list[float]] = {}
    for d in originals:
        for kind, version in edits(texts[d], texts[rng.choice(units.ids)], rng).items():
            near, _ = duplicates.pair_scores([texts[d], version], units.vectors[:2], np.array([0]), np.array([1]))
            kinds.setdefault(kind, []).append(float(near[0]))
    _, idx = neighbours(units.vectors, duplicates.NEIGHBOURS)
    pairs = np.unique(np.sort(np.c_[np.repeat(np.arange(len(units)), idx.shape[1]), idx.ravel()], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    near, _ = duplicates.pair_scores(units.texts, units.vectors, pairs[:, 0], pairs[:, 1])
    flagged = [(units.ids[p], units.ids[q], round(float(v), 3), *shared_text(texts[units.ids[p]], texts[units.ids[q]]))
               for (p, q), v in zip(pairs, near) if v >= duplicates.NEAR_THRESHOLD]
    positives = np.concatenate([np.array(v) for v in kinds.values()])
    return {"kinds": {k: (min(v), float(np.mean(np.array(v) >= duplicates.NEAR_THRESHOLD))) for k, v in kinds.items()},
            "recall": float(np.mean(positives >= duplicates.NEAR_THRESHOLD)), "versions": len(positives),
            "distinct_pairs": len(pairs), "distinct_flagged": flagged,
            "distinct_max_unflagged": float(near[near < duplicates.NEAR_THRESHOLD].max())}


# ---- outliers ---------------------------------------------------------------------------------------
def bench_outliers(units: dict[str, Units]) -> tuple[dict[tuple[str, str, float], tuple[float, float]], dict[str, list[str]]]:
    """AP of the ranking per mix, and per host the titles of its own documents ranked among the strays
    (the top n of the last draw at 3 %): the "misses" a person can judge."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    out, ranked_high = {}, {}
    for host, guest in (("cranfield", "scifact"), ("scifact", "cranfield")):
        h, g = units[host].vectors, units[guest].vectors
        for frac in (0.02, 0.03):
            ours, base = [], []
            for _ in range(DRAWS):
                n = int(round(frac * len(h)))
                x = np.vstack([h, g[rng.choice(len(g), n, replace=False)]])
                y = np.r_[np.zeros(len(h)), np.ones(n)]
                score = outliers.distances(x)
                ours.append(average_precision_score(y, score))
                sims, _ = neighbours(x, 10)
                base.append(average_precision_score(y, (1 - sims).mean(1)))
            out[(host, guest, frac)] = (float(np.mean(ours)), float(np.mean(base)))
        ranked_high[host] = [units[host].title(i) for i in np.argsort(-score, kind="stable")[:n] if i < len(h)]
    return out, ranked_high


# ---- topics -----------------------------------------------------------------------------------------
def mixed(units: dict[str, Units], a: list[str], b: list[str], va, vb,
          names: tuple[str, ...] = ("cranfield", "scifact", "MRPC sentences")) -> tuple[Units, np.ndarray, list[str]]:
    """The named sources in one set of units, and each unit's source number."""
    sents, first = np.unique(np.array(a + b, dtype=object), return_index=True)
    parts = {"cranfield": (units["cranfield"].texts, units["cranfield"].vectors),
             "scifact": (units["scifact"].texts, units["scifact"].vectors),
             "MRPC sentences": (list(sents), np.vstack([va, vb])[first])}
    texts = [t for name in names for t in parts[name][0]]
    vectors = np.vstack([parts[name][1] for name in names])
    y = np.concatenate([np.full(len(parts[name][0]), k) for k, name in enumerate(names)]).astype(float)
    ids = [f"u{i}" for i in range(len(texts))]
    return Units(ids, ids, [None] * len(ids), texts, [""] * len(ids), vectors), y, list(names)


def bench_topics(u: Units, y: np.ndarray, sources: list[str], asked: tuple[int | None, ...] = (None, 3)
                 ) -> list[tuple[str, float, float, list[str]]]:
    from sklearn.metrics import normalized_mutual_info_score

    rows = []
    for n in asked:
        t0 = time.perf_counter()
        found, labels = topics.topics(u, n)
        secs = time.perf_counter() - t0
        described = [f"{t.label} ({t.size}: {np.mean(y[labels == t.id] == np.bincount(y[labels == t.id].astype(int)).argmax()):.0%} "
                     f"{sources[np.bincount(y[labels == t.id].astype(int)).argmax()]})" for t in found]
        rows.append((f"auto ({len(found)})" if n is None else f"n={n}", normalized_mutual_info_score(y, labels), secs,
                     described))
    return rows


# ---- map and speed ----------------------------------------------------------------------------------
def bench_map(u: Units, y: np.ndarray, work: Path, png: Path, n: int = 10_000) -> tuple[float, float, float, float]:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    pick = np.sort(np.random.default_rng(0).choice(len(u), n, replace=False))
    sub = Units([u.ids[i] for i in pick], [u.ids[i] for i in pick], [None] * n, [u.texts[i] for i in pick],
                [""] * n, u.vectors[pick])
    t0, c0 = time.perf_counter(), time.process_time()
    found, labels = topics.topics(sub)
    xy = corpus_map.project(sub.vectors)
    corpus_map.draw(sub, xy, labels, found, "topic", work / "map-10k.html")
    corpus_map.draw(sub, xy, labels, found, "topic", png)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    from sklearn.decomposition import PCA

    knn = lambda z: cross_val_score(KNeighborsClassifier(10), z, y[pick], cv=3).mean()  # noqa: E731
    return secs, cpu, knn(xy), knn(PCA(2, random_state=0).fit_transform(sub.vectors))


def bench_duplicate_speed(base: np.ndarray, sizes: tuple[int, ...]) -> list[tuple[int, float, float, int]]:
    """find() on n real sentences; vectors are the real document vectors, repeated with a little noise
    to reach n (the time depends on n and the dimension, not on what the vectors say)."""
    out = []
    texts = benchlib.scale_texts(max(sizes))
    rng = np.random.default_rng(0)
    for n in sizes:
        reps = base[rng.choice(len(base), n)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
        ids = [f"c{i}" for i in range(n)]
        u = Units(ids, ids, [None] * n, texts[:n], [""] * n, normalise(reps))
        t0, c0 = time.perf_counter(), time.process_time()
        groups = duplicates.find(u)
        out.append((n, time.perf_counter() - t0, time.process_time() - c0, len(groups)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="The shared collections.")
    ap.add_argument("--work", type=Path, default=Path("/tmp/searcher-bench-analyze"),
                    help="Where the collection indexes and cached MRPC vectors are kept between runs.")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown file to update.")
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "map.png",
                    help="Where to draw the map of 10,000 texts of the three collections.")
    ap.add_argument("--sizes", default="10000,100000", help="Chunk counts for the duplicates timing.")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    s = {name: collection_index(name, args.data, args.work) for name in ("cranfield", "scifact")}
    units = {name: units_of(x) for name, x in s.items()}
    lines = [f"Machine: {benchlib.machine_line()}. Code: {benchlib.code_version(REPO)}.",
             f"Command: `{benchlib.command_line('scripts/bench_analyze.py', sys.argv[1:] if argv is None else argv)}`", ""]

    lines += ["### similar: co-relevance nDCG@10", "",
              "Each relevant document of a query with ≥ 2 relevant documents asks for 10 similar documents, judged by "
              "the query's other relevant documents.", "",
              "| collection | lists | mean-vector cosine | BM25 more-like-this | searcher similar |", "|---|---|---|---|---|"]
    for name in ("cranfield", "scifact"):
        r = bench_similar(name, s[name], args.data)
        lines.append(f"| {name} | {r['lists']} | {r['mean-vector cosine (baseline)']:.4f} | "
                     f"{r['BM25 more-like-this (baseline)']:.4f} | **{r['searcher similar']:.4f}** |")
        print(lines[-1], flush=True)

    y, a, b, va, vb = mrpc(args.data, s["cranfield"], args.work)
    sem = bench_semantic(y, a, b, va, vb)
    lines += ["", f"### duplicates, semantic tier: MRPC train ({len(y)} pairs, {y.mean():.0%} paraphrases)", "",
              "| score | average precision | best F1 (at threshold) | F1 at the default threshold |", "|---|---|---|---|"]
    for name, (ap_, bf, bt, fd) in sem.items():
        default = f"{fd:.4f} (threshold {duplicates.SEMANTIC_THRESHOLD}, {fd / bf:.3f} × best)" if fd == fd else "–"
        lines.append(f"| {name} | {ap_:.4f} | {bf:.4f} ({bt:.3f}) | {default} |")
    print("\n".join(lines[-4:]), flush=True)

    lines += ["", f"### duplicates, near tier (word 3-gram containment ≥ {duplicates.NEAR_THRESHOLD})", "",
              "| collection | edit | lowest score | found |", "|---|---|---|---|"]
    near_notes = []
    for name in ("cranfield", "scifact"):
        r = bench_near(name, s[name], args.data)
        for kind, (low, found) in r["kinds"].items():
            lines.append(f"| {name} | {kind} | {low:.3f} | {found:.1%} |")
        near_notes.append(f"- {name}: recall {r['recall']:.4f} over {r['versions']} edited versions; of "
                          f"{r['distinct_pairs']} candidate pairs of distinct documents, {len(r['distinct_flagged'])} "
                          f"flagged (highest unflagged {r['distinct_max_unflagged']:.3f}): "
                          + (", ".join(f"{p}~{q} {v} ({longest} words, {share:.0%})"
                                       for p, q, v, longest, share in r["distinct_flagged"]) or "none")
                          + "; flagged pairs that share no verbatim run of 20 words: "
                          + str(sum(longest < 20 for *_, longest, _ in r["distinct_flagged"])))
    lines += ["", "Pairs of distinct documents (different ids) that the default threshold flags, each with the "
              "longest word run the two share verbatim and the share of the shorter one in shared runs of ≥ 8 words "
              "(difflib, independent of the near score):", ""] + near_notes
    print("\n".join(lines[-3:]), flush=True)

    out, ranked_high = bench_outliers(units)
    lines += ["", f"### outliers: average precision (mean of {DRAWS} draws)", "",
              "| host | strays from | share | searcher (distance to the nearest tenth) | mean distance to 10 neighbours (baseline) |",
              "|---|---|---|---|---|"]
    for (host, guest, frac), (ours, base) in out.items():
        lines.append(f"| {host} | {guest} | {frac:.0%} | **{ours:.3f}** | {base:.3f} |")
    for host, titles in ranked_high.items():
        lines.append(f"\n{host}'s own documents ranked among the strays (last draw, 3 %: {len(titles)}): "
                     + "; ".join(f"*{t[:80]}*" for t in titles))
    print("\n".join(lines[-4:]), flush=True)

    u, ysrc, sources = mixed(units, a, b, va, vb)
    lines += ["", f"### topics: cranfield + scifact + MRPC sentences ({len(u)} texts)", "",
              "| topics | NMI with source | seconds | topics (size: purity, majority source) |", "|---|---|---|---|"]
    for how, nmi, secs, described in bench_topics(u, ysrc, sources):
        lines.append(f"| {how} | {nmi:.3f} | {secs:.1f} | {'; '.join(described)} |")
    lines += ["", "The automatic number on the other mixes of two sources, and on each collection alone (no labels: "
              "the number chosen and the sizes):", "", "| texts | topics chosen | NMI with source | topics |",
              "|---|---|---|---|"]
    for names in (("cranfield", "scifact"), ("scifact", "MRPC sentences"), ("cranfield", "MRPC sentences"),
                  ("cranfield",), ("scifact",), ("MRPC sentences",)):
        mix, ymix, _ = mixed(units, a, b, va, vb, names)
        (how, nmi, _, described), = bench_topics(mix, ymix, list(names), (None,))
        score = f"{nmi:.3f}" if len(names) > 1 else "–"
        lines.append(f"| {' + '.join(names)} | {how} | {score} | {'; '.join(described)} |")
    print("\n".join(lines[-9:]), flush=True)

    secs, cpu, acc, acc_pca = bench_map(u, ysrc, args.work, args.png)
    t0 = time.perf_counter()
    report = s["cranfield"].map(args.work / "map-cranfield.png")
    lines += ["", "### map", "",
              f"- 10,000 texts of the mix: topics + projection + HTML + PNG ({args.png.name}) in {secs:.1f} s "
              f"wall, {cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs); source of a point predicted from "
              f"its 10 nearest points on the map: {acc:.3f} (plain PCA: {acc_pca:.3f}).",
              f"- `Searcher.map` of cranfield ({report.documents} documents) to PNG: {time.perf_counter() - t0:.1f} s."]
    print("\n".join(lines[-2:]), flush=True)

    speed = bench_duplicate_speed(np.vstack([units["cranfield"].vectors, units["scifact"].vectors, va, vb]),
                                  tuple(int(x) for x in args.sizes.split(",")))
    lines += ["", "### duplicates: speed (all three tiers, chunks of real sentences)", "",
              f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.", "",
              "| chunks | seconds (wall) | CPU seconds | groups |", "|---|---|---|---|"]
    lines += [f"| {n:,} | {secs:.1f} | {cpu:.1f} | {g} |" for n, secs, cpu, g in speed]
    print("\n".join(lines[-len(speed):]), flush=True)
    lines += ["", f"Whole run: {time.perf_counter() - t_start:.0f} s."]
    benchlib.write_section(args.out, "bench_analyze", "## Analyses: similar, duplicates, outliers, topics, map\n\n"
                           + "\n".join(lines))


if __name__ == "__main__":
    main()
