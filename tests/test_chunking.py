"""Token-aware chunking with the model's own tokenizer: limits, boundaries and positions."""
from __future__ import annotations

import random

import pytest

from searcher.ingest.chunking import ChunkingConfig, chunk_text, sentences


def _check_positions(text, chunks):
    for c in chunks:
        assert text[c.start_char:c.end_char] == c.text
        assert c.start_line == text.count("\n", 0, c.start_char) + 1
        assert c.end_line == text.count("\n", 0, c.end_char - 1) + 1


def test_no_chunk_exceeds_the_model_limit(encoder):
    rng = random.Random(7)
    words = "the quick brown fox jumps over lazy dogs internationalization antidisestablishmentarianism".split()
    paras = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 400))) + "." for _ in range(30)]
    text = "\n\n".join(paras) + "\n" + "x" * 3000  # an unbreakable 3000-character token run at the end
    limit = encoder.max_chunk_tokens
    chunks = chunk_text(text, encoder.token_spans, ChunkingConfig(limit, 0))
    assert len(chunks) > 10
    for c in chunks:
        n = len(encoder.token_spans([c.text])[0])
        assert n <= limit and n == c.n_tokens
    _check_positions(text, chunks)
    # nothing is lost: every non-space character of the text is inside some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start_char, c.end_char))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_boundaries_fall_on_paragraphs_then_sentences(encoder):
    para = "This sentence is about paragraph {i} and it has a few more words in it. " * 6
    text = "\n\n".join(para.format(i=i).strip() for i in range(12))
    chunks = chunk_text(text, encoder.token_spans, ChunkingConfig(200, 0))
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith("This sentence") and c.text.endswith(".")
    # paragraphs (~90 tokens) fit, so each chunk is made of whole paragraphs
    starts = {text.find(p) for p in text.split("\n\n")}
    assert all(c.start_char in starts for c in chunks)


def test_long_paragraph_splits_at_sentences_and_overlap_repeats_whole_sentences(encoder):
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(80))
    chunks = chunk_text(text, encoder.token_spans, ChunkingConfig(60, 20))
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:]):
        assert a.text.endswith(".") and b.text.startswith("Sentence number")
        assert a.start_char < b.start_char < a.end_char  # the overlap repeats the tail of a
    _check_positions(text, chunks)


def test_line_numbers(encoder):
    text = "first line of text\nsecond line here\n\nthird paragraph\nstill third\n"
    chunks = chunk_text(text, encoder.token_spans, ChunkingConfig(8, 0))
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 2), (4, 5)]
    _check_positions(text, chunks)


def test_sentence_splitter_handles_cjk_and_abbreviations():
    text = "Dr. Smith paid $3.50 at e.g. the shop. See https://example.com/a.b now! 今天下雨。明天晴天！真的吗？好"
    spans = [text[a:b] for a, b in sentences(text, 0, len(text))]
    assert spans == ["Dr. Smith paid $3.50 at e.g. the shop.", "See https://example.com/a.b now!",
                     "今天下雨。", "明天晴天！", "真的吗？", "好"]


def test_tiny_model_limit(tiny_model):
    from searcher.embed.encoder import Encoder

    enc = Encoder(str(tiny_model))
    assert enc.max_chunk_tokens == 62
    text = "word " * 1000
    chunks = chunk_text(text, enc.token_spans, ChunkingConfig(enc.max_chunk_tokens, 0))
    assert all(len(enc.token_spans([c.text])[0]) <= 62 for c in chunks)


@pytest.mark.parametrize("bad", [dict(max_tokens=4), dict(max_tokens=100, overlap_tokens=60)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        ChunkingConfig(**bad)


def test_all_lower_case_text_still_splits_into_sentences():
    text = ("simple shear flow past a flat plate of small viscosity . in the study of viscous flow the "
            "shock is curved. consequently there is a rotational region, approx. the size of a wing.")
    assert [text[a:b] for a, b in sentences(text, 0, len(text))] == [
        "simple shear flow past a flat plate of small viscosity .",
        "in the study of viscous flow the shock is curved.",
        "consequently there is a rotational region, approx. the size of a wing."]
