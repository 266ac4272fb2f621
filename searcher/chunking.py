"""Split a document into chunks that fit the model, with boundaries on paragraphs and sentences.

Token counts come from the model's own tokenizer, so no chunk is ever truncated by the encoder:
every chunk has at most ``max_tokens`` tokens (special tokens excluded).
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .records import Chunk

# Given texts, the (start, end) character span of every token of each, special tokens excluded.
TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
# A sentence ends after . ! ? (plus closing quotes/brackets) followed by white space, or after
# CJK full-width end punctuation, which needs no following space.
_SENTENCE_END = re.compile(r"""(?:[.!?]+['")\]’”]*(?=\s)|[。！？；…]+[」』”’）]*)""")
_ABBREVIATIONS = frozenset("""mr mrs ms dr prof sr jr st vs etc e.g i.e cf fig no vol al approx
dept inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec""".split())


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut; recorded in the index manifest so every run cuts the same way."""

    max_tokens: int
    overlap_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError(f"chunk size must be at least 8 tokens, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError(f"overlap must be between 0 and half the chunk size, got {self.overlap_tokens}")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph: int


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Character spans of the blank-line separated paragraphs, trimmed of surrounding white space."""
    spans, pos = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Character spans of the sentences within ``text[start:end]``."""
    spans, pos = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.group().startswith(".") and _is_abbreviation(text, pos, m.start()):
            continue
        spans.append((pos, m.end()))
        pos = m.end()
    spans.append((pos, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def _is_abbreviation(text: str, start: int, dot: int) -> bool:
    word = text[max(start, dot - 12):dot].rsplit(None, 1)[-1:] or [""]
    w = word[0].lower().lstrip("([\"'")
    return w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha())


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def chunk_text(text: str, token_spans: TokenSpans, config: ChunkingConfig) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``config.max_tokens`` tokens.

    Units are sentences (a sentence longer than the limit is cut between words); they are packed
    greedily, and a paragraph that would straddle two chunks starts a new chunk instead when it
    fits in one, so boundaries fall on paragraphs first, sentences second, words last.
    """
    units = _units(text, token_spans, config.max_tokens)
    if not units:
        return []
    groups = _pack(units, config)
    spans = [(g[0].start, g[-1].end) for g in groups]
    spans = _enforce_limit(text, spans, token_spans, config.max_tokens)
    newlines = [m.start() for m in re.finditer("\n", text)]
    chunks = []
    for i, (a, b, n) in enumerate(spans):
        chunks.append(Chunk(ord=i, text=text[a:b], start_char=a, end_char=b,
                            start_line=bisect.bisect_left(newlines, a) + 1,
                            end_line=bisect.bisect_left(newlines, b - 1) + 1, n_tokens=n))
    return chunks


def _units(text: str, token_spans: TokenSpans, limit: int) -> list[_Unit]:
    raw = [(a, b, p) for p, (pa, pb) in enumerate(paragraphs(text)) for a, b in sentences(text, pa, pb)]
    if not raw:
        return []
    units: list[_Unit] = []
    for (a, b, p), toks in zip(raw, token_spans([text[a:b] for a, b, _ in raw])):
        if not toks:
            continue  # nothing the model can see (e.g. only control characters)
        if len(toks) <= limit:
            units.append(_Unit(a, b, len(toks), p))
            continue
        for s, e, n in _split_tokens(text[a:b], toks, limit):
            units.append(_Unit(a + s, a + e, n, p))
    return units


def _split_tokens(text: str, toks: list[tuple[int, int]], limit: int) -> list[tuple[int, int, int]]:
    """Cut an over-long span into pieces of ≤ limit tokens, preferring cuts between words."""
    pieces, i = [], 0
    while i < len(toks):
        j = min(i + limit, len(toks))
        if j < len(toks):
            # back off to a token that starts after white space, so words stay whole
            k = j
            while k > i + limit // 2 and not (toks[k][0] > toks[k - 1][1]):
                k -= 1
            if k > i + limit // 2:
                j = k
        pieces.append((toks[i][0], toks[j - 1][1], j - i))
        i = j
    return pieces


def _pack(units: list[_Unit], config: ChunkingConfig) -> list[list[_Unit]]:
    limit, groups, cur, used = config.max_tokens, [], [], 0
    para_tokens: dict[int, int] = {}
    for u in units:
        para_tokens[u.paragraph] = para_tokens.get(u.paragraph, 0) + u.tokens
    for u in units:
        new_paragraph = bool(cur) and u.paragraph != cur[-1].paragraph
        overflow = used + u.tokens > limit
        # keep a paragraph whole when it fits in a fresh chunk but not in what is left of this one
        whole = new_paragraph and used + para_tokens[u.paragraph] > limit >= para_tokens[u.paragraph]
        if cur and (overflow or whole):
            groups.append(cur)
            cur = _overlap(cur, u, config)
            used = sum(x.tokens for x in cur)
        cur.append(u)
        used += u.tokens
    if cur:
        groups.append(cur)
    return groups


def _overlap(prev: list[_Unit], nxt: _Unit, config: ChunkingConfig) -> list[_Unit]:
    """The trailing whole sentences of ``prev`` to repeat at the start of the next chunk."""
    carry: list[_Unit] = []
    budget = min(config.overlap_tokens, config.max_tokens - nxt.tokens)
    for u in reversed(prev[1:]):
        if u.tokens > budget:
            break
        carry.insert(0, u)
        budget -= u.tokens
    return carry


def _enforce_limit(text: str, spans: list[tuple[int, int]], token_spans: TokenSpans,
                   limit: int) -> list[tuple[int, int, int]]:
    """Count each chunk as the tokenizer sees it whole, and cut again any chunk that a tokenizer
    without additive counts (e.g. SentencePiece) pushed over the limit, until all fit."""
    out: list[tuple[int, int, int]] = []
    pending, cut_at = spans, limit
    while pending:
        retry = []
        for (a, b), toks in zip(pending, token_spans([text[x:y] for x, y in pending])):
            if len(toks) <= limit:
                out.append((a, b, len(toks)))
            else:
                retry.extend((a + s, a + e) for s, e, _ in _split_tokens(text[a:b], toks, cut_at))
        pending, cut_at = retry, max(1, cut_at * 3 // 4)
    return sorted(out)
