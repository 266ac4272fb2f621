"""Keyword analysis: text → index terms for the SQLite FTS5 (BM25) index.

English words are lower-cased, stop words dropped and Snowball-stemmed (PyStemmer); runs of
Chinese/Japanese characters are segmented into words with jieba, so a Chinese query finds Chinese
passages even when the embedding model cannot read them. Identifiers keep their whole form and
also contribute their parts (``rotate_logs`` → ``rotate_logs rotat log``).
"""
from __future__ import annotations

import logging
import re
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


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression that matches any of the query's terms (BM25 ranks them)."""
    unique = list(dict.fromkeys(terms(text)))
    if not unique:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)
