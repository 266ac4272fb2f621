"""The LangChain adapter: LangChain's own standard vector-store suite, then retriever, filters and reopening."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests  # noqa: E402

from searcher import Searcher, SearcherError  # noqa: E402
from searcher.integrations.langchain import SearcherVectorStore  # noqa: E402

from .conftest import NOTES, write_tree  # noqa: E402


@pytest.fixture
def store(tmp_path: Path, encoder):
    """An empty store on a fresh index folder, embedded by the real packaged model."""
    s = SearcherVectorStore(tmp_path / "idx")
    yield s
    s.close()


class TestStandardSuite(VectorStoreIntegrationTests):
    """LangChain's standard tests, sync and async, unchanged (the base class checks none is overridden)."""

    @pytest.fixture
    def vectorstore(self, store):
        return store


TEAMS = {"logs": ("Logs are rotated nightly by logrotate; raise the rotate count to keep more days.", "ops"),
         "backup": ("Backups copy the database dump to the offsite bucket every Sunday.", "ops"),
         "bread": ("Let the sourdough rise overnight, then bake it at 230 degrees.", "kitchen"),
         "tomato": ("Water tomato plants deeply twice a week and tie them to stakes.", "garden")}


def _add_teams(store: SearcherVectorStore) -> None:
    store.add_texts([t for t, _ in TEAMS.values()], [{"team": team} for _, team in TEAMS.values()],
                    ids=list(TEAMS))


def test_retriever_takes_k_and_metadata_filter(store):
    _add_teams(store)
    retriever = store.as_retriever(search_kwargs={"k": 1})
    assert [d.id for d in retriever.invoke("how long are old log files kept")] == ["logs"]

    ops = store.as_retriever(search_kwargs={"k": 4, "filter": {"team": "ops"}}).invoke("baking bread")
    assert sorted(d.id for d in ops) == ["backup", "logs"]
    either = store.as_retriever(search_kwargs={"filter": {"team": ["kitchen", "garden"]}, "mode": "dense"})
    assert sorted(d.id for d in either.invoke("food")) == ["bread", "tomato"]
    assert [d.id for d in store.similarity_search("food", filters={"metadata": {"team": "garden"}})] == ["tomato"]
    with pytest.raises(SearcherError, match="filter: metadata 'team' is also in filters"):
        store.similarity_search("food", filter={"team": "ops"}, filters={"metadata": {"team": "garden"}})
    assert [d.id for d in asyncio.run(retriever.ainvoke("watering the vegetable garden"))] == ["tomato"]


def test_score_threshold_retriever_uses_cosine_relevance(store):
    _add_teams(store)
    scored = store.similarity_search_with_relevance_scores("sourdough bread baking", k=4)
    assert scored[0][0].id == "bread" and all(0 <= s <= 1 for _, s in scored)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    cut = (scored[0][1] + scored[1][1]) / 2
    retriever = store.as_retriever(search_type="similarity_score_threshold",
                                   search_kwargs={"score_threshold": cut, "k": 4})
    assert [d.id for d in retriever.invoke("sourdough bread baking")] == ["bread"]
    with pytest.raises(SearcherError, match="mode: relevance scores come from dense search"):
        store.similarity_search_with_relevance_scores("bread", mode="keyword")


def test_long_text_hits_are_chunks_and_get_by_ids_is_whole(store):
    paragraphs = [f"Paragraph {i} talks about " + ("the weather in spring and rain. " * 12) for i in range(8)]
    paragraphs[5] = "The tax return is due on the last day of April; file it online. " * 4
    long_text = "\n\n".join(p.strip() for p in paragraphs)
    store.add_texts([long_text, "a short note about taxes"], [{"kind": "long"}, {"kind": "short"}],
                    ids=["long", "short"])

    hits = store.similarity_search("when is the tax return due", k=2)
    assert {d.id for d in hits} == {"long", "short"}           # one hit per document by default
    best_long = next(d for d in hits if d.id == "long")
    assert "tax return" in best_long.page_content and len(best_long.page_content) < len(long_text)
    chunks = store.similarity_search("when is the tax return due", k=20, group_by_file=False)
    assert sum(d.id == "long" for d in chunks) > 1

    # rebuilt from chunks that do not cover the blank lines between paragraphs, nor the final newline
    store.add_texts([long_text + "\n"], [{"kind": "long"}], ids=["long"])
    assert store.get_by_ids(["long", "missing", "short"]) == [
        Document(id="long", page_content=long_text, metadata={"kind": "long"}),
        Document(id="short", page_content="a short note about taxes", metadata={"kind": "short"})]


def test_store_persists_across_reopen_and_wraps_a_searcher(tmp_path, encoder):
    first = SearcherVectorStore.from_texts(["Logs rotate nightly.", "Bread rises overnight."],
                                           metadatas=[{"n": 1}, {"n": 2}], ids=["a", "b"], index=tmp_path / "idx")
    first.close()
    with Searcher(tmp_path / "idx") as searcher:
        again = SearcherVectorStore(searcher)
        assert again.similarity_search("log rotation", k=1) == [
            Document(id="a", page_content="Logs rotate nightly.", metadata={"n": 1})]
        again.delete()          # no ids: everything
        assert again.similarity_search("log rotation") == [] and searcher.files()["indexed"] == []


def test_indexed_files_carry_source_and_location(tmp_path, encoder):
    notes = write_tree(tmp_path / "notes", NOTES)
    with Searcher(tmp_path / "idx") as searcher:
        searcher.index(notes)
        store = SearcherVectorStore(searcher)
        hit = store.similarity_search("keep more days of logs", k=1)[0]
        assert hit.metadata["source"] == hit.id == str(notes / "ops/logging.md")
        assert hit.metadata["location"] == ":1 (Logging)"      # the whole small file is one chunk
        assert store.get_by_ids([hit.id])[0].page_content.startswith("# Logging")


def test_bad_arguments_are_one_line_errors(store):
    with pytest.raises(SearcherError, match="embedding: searcher embeds with its index's own model"):
        SearcherVectorStore.from_texts(["x"], DeterministicFakeEmbedding(size=6), index=store.searcher.path)
    _add_teams(store)
    with pytest.raises(SearcherError, match="unknown search argument.*fetch_k"):
        store.similarity_search("logs", fetch_k=10)
    with pytest.raises(SearcherError, match="add_texts\\(\\): got 1 texts and 2 ids"):
        store.add_texts(["x"], ids=["1", "2"])
