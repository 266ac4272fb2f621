"""Keyword analysis: text → index terms for the SQLite FTS5 (BM25) index.

English words are lower-cased, stop words dropped and Snowball-stemmed (PyStemmer); runs of
Chinese/Japanese characters are segmented into words with jieba, so a Chinese query finds Chinese
passages even when the embedding model cannot read them. Identifiers keep their whole form and
also contribute their parts (``rotate_logs`` → ``rotate_logs rotat log``).

Ranking is Lucene's BM25 (k1 = 1.5, b = 0.75, idf = ln(1 + (N − df + 0.5) / (df + 0.5)), query-term
frequency counted), the function bm25s and Lucene compute; ``store.sqlite.Store.keyword_search``
scores with it over the tokens FTS5 holds (``fts_tokens``), so scores equal bm25s's on the same tokens
(tests/test_search_quality.py checks this).
"""
from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

# The English stop words of Lucene/Elasticsearch's default analyzer, plus a few very common ones.
STOPWORDS = frozenset("""a an and are as at be but by for if in into is it no not of on or such that the
their then there these they this to was will with i me my we our you your he him his she her its them what
which who whom do does did have has had been being am were can could should would shall may might must
so than too very s t just from up down out over under again further once here when where why how all any
both each few more most other some own same only nor about above after before below between through during""".split())

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+(?:[.'][^\W{_CJK}]+)*")
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_HUMP = re.compile(r"[a-z][A-Z]")
_SPLIT = re.compile(r"[_.']+")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def has_cjk(text: str) -> bool:
    return re.search(f"[{_CJK}]", text) is not None


def terms(text: str) -> list[str]:
    """The index terms of a text, in order (repeats kept: BM25 counts them)."""
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if _CJK_RUN.match(tok):
            out += [w for w in _jieba().cut_for_search(tok) if w.strip()]
            continue
        low = tok.lower()
        if low in STOPWORDS:
            continue
        out.append(_normal(low))
        # identifiers (snake_case, camelCase, dotted names) also contribute their parts
        parts = [q for p in _SPLIT.split(tok) for q in (_CAMEL.findall(p) if _HUMP.search(p) else [p])]
        if len(parts) > 1:
            out += [_normal(q.lower()) for q in parts if len(q) > 1 and q.lower() not in STOPWORDS]
    return out


def _normal(word: str) -> str:
    return _stem(word) if word.isalpha() else word


K1 = 1.5      # BM25 term-frequency saturation: Lucene's and bm25s's default
B = 0.75      # BM25 document-length normalisation: the same
_FTS_SEPARATOR = re.compile(r"[^\w.]+")   # what FTS5's unicode61 tokenizer (tokenchars '_.') splits on


def _fold(token: str) -> str:
    """Latin diacritics removed, as unicode61 does (remove_diacritics)."""
    if token.isascii():
        return token
    return "".join(c for c in unicodedata.normalize("NFKD", token) if not (unicodedata.combining(c) and c < "\u2000"))


def fts_tokens(text: str) -> list[str]:
    """The tokens FTS5 stores for a space-joined string of index terms: a term such as ``earth's``
    is two FTS5 tokens (``earth``, ``s``), ``café`` is ``cafe``. BM25 counts these tokens."""
    if not text.isascii():
        return [_fold(t) for t in _FTS_SEPARATOR.split(text) if t]
    return text.replace("'", " ").split()   # the only ASCII separator a term can hold


def query_tokens(text: str) -> list[str]:
    """The query's FTS5 tokens in order, repeats kept (BM25 weights a token by how often the query
    says it; the order makes the query's phrase)."""
    return fts_tokens(" ".join(terms(text)))


def match_expression(tokens: Iterable[str]) -> str:
    """An FTS5 MATCH expression that matches any of the tokens."""
    return " OR ".join(quote(t) for t in tokens)


def phrase_expression(tokens: Sequence[str]) -> str:
    """An FTS5 MATCH expression for the tokens one after the other (stop words are not indexed, so
    "flow over a flat plate" is the phrase ``flow flat plate`` in queries and chunks alike)."""
    return quote(" ".join(tokens))


def quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def idf(df: int, n: int) -> float:
    """Lucene's BM25 idf: always positive, so a word in most chunks still counts a little."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def bm25(text: str, weights: dict[str, float], avgdl: float) -> float:
    """BM25 of one chunk (its stored terms string) for query tokens weighted by query frequency × idf."""
    tokens = fts_tokens(text)
    norm = K1 * (1.0 - B + B * len(tokens) / avgdl)
    counts = Counter(tokens)
    return sum(w * f / (f + norm) for t, w in weights.items() if (f := counts[t]))
