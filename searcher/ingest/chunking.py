"""Split a document into chunks that fit the model and follow the document's structure.

Token counts come from the model's own tokenizer, so no chunk is ever truncated by the encoder:
every chunk has at most ``max_tokens`` tokens (special tokens excluded), and every chunk's text
is exactly ``document_text[start_char:end_char]``.

A document is a text plus the blocks its reader found (``records.Block``). Blocks with the same
heading path (and, for PDF, the same page) form a *section*; a heading block opens one.
Within a section the chunker builds a tree — block, then paragraph (prose) or top-level
definition (code), then sentences or lines — and packs its leaves greedily, starting a new
chunk wherever a whole group that would straddle two chunks fits in one fresh chunk. So cuts
fall between sections first, then blocks (a fenced code block is kept whole when it fits),
paragraphs or definitions, sentences or lines, and words last.

Across sections: a chunk never crosses into the next section, except that
- a heading with nothing under it yet (``# Install`` directly followed by ``## Linux``) stays
  with what follows it, and
- a *tiny* section (at most a quarter of the chunk size) joins the chunk before it when the
  whole section fits there and the two share a parent heading (a common, non-empty heading path
  prefix, or the same path). The chunk's ``heading`` is then the common path of the sections
  whose text it holds. PDF pages are never joined: a chunk has one page.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..records import Block, Chunk

# Given texts, the (start, end) character span of every token of each, special tokens excluded.
TokenSpans = Callable[[Sequence[str]], list[list[tuple[int, int]]]]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
# A sentence ends after . ! ? (plus closing quotes/brackets) followed by white space, or after
# CJK full-width end punctuation (。！？；… and the full-width period), which needs no space.
_SENTENCE_END = re.compile(r"""(?:[.!?]+['")\]’”»]*(?=\s)|[。！？；…．｡]+[」』”’）》〉]*)""")
_ABBREVIATIONS = frozenset("""mr mrs ms dr prof sr jr st vs etc e.g i.e cf fig figs no nos vol vols al approx
dept inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec eq eqs ch sec sect p pp ed eds
est min max rev gen gov lt col sgt capt mt ft u.s a.m p.m ca viz resp""".split())
_NEXT_WORD = re.compile(r"\s+(\S)")
_CODE_CLOSER = re.compile(r"^(?:[})\]]|end\b|fi\b|done\b|esac\b|else\b|elif\b|elsif\b|except\b|finally\b|"
                          r"catch\b|then\b|do\b|\{)")
_TOKENIZE_BATCH = 2048


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
    """A leaf of the document tree: a sentence, a line, a heading, or a piece of one."""

    start: int
    end: int
    tokens: int
    key: tuple[int, ...]     # (section, block, group, ...): coarse to fine
    heading: bool = False    # part of a heading block


@dataclass(frozen=True)
class _Section:
    heading: tuple[str, ...]
    page: int | None
    body: bool               # holds more than headings


# ---- splitting text ------------------------------------------------------------------------------
def paragraphs(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the blank-line separated paragraphs of ``text[start:end]``, trimmed."""
    end = len(text) if end is None else end
    spans, pos = [], start
    for m in _PARAGRAPH_BREAK.finditer(text, start, end):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Character spans of the sentences within ``text[start:end]``.

    Never cuts inside a number (3.14), a URL (example.com/a.b), an abbreviation (Dr., e.g.,
    U.S.) or before a lower-case word; CJK end punctuation ends a sentence without a space."""
    spans, pos = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.group()[0] == "." and (_is_abbreviation(text, pos, m.start())
                                    or (_lower_follows(text, m.end(), end) and _short_word_before(text, m.start()))):
            continue
        spans.append((pos, m.end()))
        pos = m.end()
    spans.append((pos, end))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[0] < s[1]]


def _is_abbreviation(text: str, start: int, dot: int) -> bool:
    word = text[max(start, dot - 12):dot].rsplit(None, 1)[-1:] or [""]
    w = word[0].lower().lstrip("([\"'")
    return w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()) or ("." in w and len(w) <= 6 and w[-1:].isalpha())


def _short_word_before(text: str, dot: int) -> bool:
    """A word of at most three letters touches the dot: with a lower-case word after it, most likely an
    abbreviation we do not list ("approx. the", "ca. five"), not the end of a sentence. Longer words,
    or a dot set apart by a space (" ."), end sentences even in all-lower-case text."""
    i = dot
    while i > 0 and dot - i <= 3 and text[i - 1].isalpha():
        i -= 1
    return 0 < dot - i <= 3 and (i == 0 or not text[i - 1].isalpha())


def _lower_follows(text: str, pos: int, end: int) -> bool:
    m = _NEXT_WORD.match(text, pos, end)
    return bool(m) and m.group(1).islower()


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _lines(text: str, a: int, b: int) -> Iterator[tuple[int, int]]:
    """Spans of the lines of ``text[a:b]`` (without their line break), blank ones included."""
    pos = a
    while pos < b:
        nl = text.find("\n", pos, b)
        e = b if nl < 0 else nl
        yield pos, e
        pos = e + 1


def _indent(text: str, a: int, b: int) -> int:
    n = 0
    for ch in text[a:min(b, a + 200)]:
        if ch == " ":
            n += 1
        elif ch == "\t":
            n += 4
        else:
            break
    return n


def _code_groups(text: str, a: int, b: int) -> list[tuple[int, int, int, int]]:
    """Non-blank lines of a code block as (start, end, definition, inner group).

    A top-level definition starts at a line at the block's outermost indentation that follows a
    blank line, or follows an indented line or a closing line (``}``, ``end``...); comments and
    decorators directly above it belong to it. The same rule one indentation level deeper
    groups a definition's body (methods of a class, blocks of a long function)."""
    lines = [(s, e, _indent(text, s, e)) for s, e in _lines(text, a, b)]
    nonblank = [(s, e, ind) for s, e, ind in lines if text[s:e].strip()]
    if not nonblank:
        return []
    base = min(ind for _, _, ind in nonblank)
    out: list[tuple[int, int, int, int]] = []
    top, inner, inner_base = -1, 0, None
    prev_blank, prev_indent, prev_closer = True, base, False
    first_of_top = True
    for s, e, ind in lines:
        if not text[s:e].strip():
            prev_blank = True
            continue
        stripped = text[s:e].strip()
        closer = bool(_CODE_CLOSER.match(stripped))
        if ind <= base and not closer and (top < 0 or prev_blank or prev_indent > base or prev_closer):
            top, inner, inner_base, first_of_top = top + 1, 0, None, True
        elif ind > base:
            if inner_base is None:
                inner_base = ind
            if ind <= inner_base and not closer and not first_of_top and (prev_blank or prev_indent > inner_base or prev_closer):
                inner += 1
            first_of_top = False
        s2, e2 = _trim(text, s, e)
        out.append((s2, e2, max(top, 0), inner))
        prev_blank, prev_indent, prev_closer = False, ind, closer
    return out


# ---- the document tree ---------------------------------------------------------------------------
def _sections(blocks: Sequence[Block], hard_pages: bool) -> tuple[list[_Section], list[int]]:
    sections: list[_Section] = []
    of_block: list[int] = []
    for i, blk in enumerate(blocks):
        page = blk.page if hard_pages else None
        prev = blocks[i - 1] if i else None
        if not sections or blk.kind == "heading" or blk.heading != prev.heading or \
                (hard_pages and page != (prev.page if prev else None)):
            sections.append(_Section(blk.heading, page, blk.kind != "heading"))
        elif blk.kind != "heading" and not sections[-1].body:
            sections[-1] = _Section(sections[-1].heading, sections[-1].page, True)
        of_block.append(len(sections) - 1)
    return sections, of_block


def _leaves(text: str, blocks: Sequence[Block], of_block: list[int]) -> list[tuple[int, int, tuple[int, ...], bool]]:
    leaves: list[tuple[int, int, tuple[int, ...], bool]] = []
    for bi, blk in enumerate(blocks):
        si = of_block[bi]
        if blk.kind == "heading":
            a, b = _trim(text, blk.start, blk.end)
            if a < b:
                leaves.append((a, b, (si, bi), True))
        elif blk.kind == "code":
            leaves += [(s, e, (si, bi, g, h), False) for s, e, g, h in _code_groups(text, blk.start, blk.end)]
        elif blk.kind == "lines":
            for s, e in _lines(text, blk.start, blk.end):
                s, e = _trim(text, s, e)
                if s < e:
                    leaves.append((s, e, (si, bi), False))
        else:
            for pi, (pa, pb) in enumerate(paragraphs(text, blk.start, blk.end)):
                leaves += [(s, e, (si, bi, pi), False) for s, e in sentences(text, pa, pb)]
    return leaves


def _units(text: str, leaves, token_spans: TokenSpans, limit: int) -> list[_Unit]:
    units: list[_Unit] = []
    for i in range(0, len(leaves), _TOKENIZE_BATCH):
        part = leaves[i:i + _TOKENIZE_BATCH]
        for (a, b, key, head), toks in zip(part, token_spans([text[a:b] for a, b, _, _ in part])):
            if not toks:
                continue  # nothing the model can see (e.g. only control characters)
            if len(toks) <= limit:
                units.append(_Unit(a, b, len(toks), key, head))
                continue
            # too long for one chunk: cut at line breaks first, then between words
            starts = [t[0] for t in toks]
            for la, lb in _lines(text, a, b):
                la, lb = _trim(text, la, lb)
                lo, hi = bisect.bisect_left(starts, la - a), bisect.bisect_left(starts, lb - a)
                if la >= lb or lo >= hi:
                    continue
                offs = [(a + s - la, a + e - la) for s, e in toks[lo:hi]]
                for s, e, n in _split_tokens(text[la:lb], offs, limit):
                    units.append(_Unit(la + s, la + e, n, key, head))
    return units


# ---- packing -------------------------------------------------------------------------------------
def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _pack(units: list[_Unit], sections: list[_Section], config: ChunkingConfig) -> list[list[_Unit]]:
    limit = config.max_tokens
    tiny = limit // 4
    group_tokens: dict[tuple[int, ...], int] = {}
    for u in units:
        for level in range(1, len(u.key) + 1):
            pfx = u.key[:level]
            group_tokens[pfx] = group_tokens.get(pfx, 0) + u.tokens
    groups: list[list[_Unit]] = []
    cur: list[_Unit] = []
    used = 0
    only_headings = True                    # cur holds nothing but heading lines
    body_path: tuple[str, ...] | None = None   # common heading path of the sections cur has text of
    for u in units:
        if cur:
            prev = cur[-1]
            brk = used + u.tokens > limit
            carry = True
            check_groups = not only_headings
            if u.key[0] != prev.key[0]:
                carry = False               # never repeat another section's text
                new, old = sections[u.key[0]], sections[prev.key[0]]
                if new.page != old.page:
                    brk = True
                elif only_headings:
                    pass                    # a heading stays with what follows it
                elif (group_tokens[u.key[:1]] <= tiny and used + group_tokens[u.key[:1]] <= limit
                      and body_path is not None and (_common(body_path, new.heading) or body_path == new.heading)):
                    check_groups = False    # a tiny section joins its neighbour
                else:
                    brk = True
            if not brk and check_groups:
                for level in range(2, len(u.key) + 1):
                    pfx = u.key[:level]
                    if pfx == prev.key[:level]:
                        continue
                    g = group_tokens[pfx]
                    if used + g <= limit:
                        break
                    if g <= limit:
                        brk = True          # the group fits a fresh chunk: do not straddle
                        break
            if brk:
                groups.append(cur)
                cur = _overlap(cur, u, config) if carry else []
                used = sum(x.tokens for x in cur)
                only_headings = all(x.heading for x in cur)
                body_path = None
                for x in cur:
                    if not x.heading:
                        h = sections[x.key[0]].heading
                        body_path = h if body_path is None else _common(body_path, h)
        cur.append(u)
        used += u.tokens
        if not u.heading:
            only_headings = False
            h = sections[u.key[0]].heading
            body_path = h if body_path is None else _common(body_path, h)
    if cur:
        groups.append(cur)
    return groups


def _overlap(prev: list[_Unit], nxt: _Unit, config: ChunkingConfig) -> list[_Unit]:
    """The trailing whole sentences (or lines) of ``prev`` to repeat at the start of the next chunk."""
    carry: list[_Unit] = []
    budget = min(config.overlap_tokens, config.max_tokens - nxt.tokens)
    for u in reversed(prev[1:]):
        if u.tokens > budget or u.heading or u.key[0] != nxt.key[0]:
            break
        carry.insert(0, u)
        budget -= u.tokens
    return carry


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


def _enforce_limit(text: str, spans: list[tuple[int, int, int]], token_spans: TokenSpans,
                   limit: int) -> list[tuple[int, int, int, int]]:
    """Count each chunk as the tokenizer sees it whole, and cut again any chunk that a tokenizer
    without additive counts (e.g. SentencePiece) pushed over the limit, until all fit.

    ``spans`` are (start, end, group); returns (start, end, tokens, group)."""
    out: list[tuple[int, int, int, int]] = []
    pending, cut_at = spans, limit
    while pending:
        retry = []
        for i in range(0, len(pending), _TOKENIZE_BATCH):
            part = pending[i:i + _TOKENIZE_BATCH]
            for (a, b, g), toks in zip(part, token_spans([text[x:y] for x, y, _ in part])):
                if len(toks) <= limit:
                    out.append((a, b, len(toks), g))
                else:
                    retry.extend((a + s, a + e, g) for s, e, _ in _split_tokens(text[a:b], toks, cut_at))
        pending, cut_at = retry, max(1, cut_at * 3 // 4)
    return sorted(out)


# ---- the entry points ----------------------------------------------------------------------------
def chunk_document(text: str, blocks: Sequence[Block], token_spans: TokenSpans, config: ChunkingConfig,
                   *, hard_pages: bool = True) -> list[Chunk]:
    """Cut a document, following its blocks, into chunks of at most ``config.max_tokens`` tokens.

    ``blocks`` come from the reader (empty: the whole text is prose). With ``hard_pages`` a
    chunk never spans two pages (PDF); otherwise ``page`` is where the chunk starts (notebooks)."""
    if not blocks:
        blocks = (Block(0, len(text), "text"),)
    sections, of_block = _sections(blocks, hard_pages)
    units = _units(text, _leaves(text, blocks, of_block), token_spans, config.max_tokens)
    if not units:
        return []
    groups = _pack(units, sections, config)
    meta: list[tuple[int | None, str | None]] = []
    spans: list[tuple[int, int, int]] = []
    block_pages = [b.page for b in blocks]
    for gi, g in enumerate(groups):
        path: tuple[str, ...] | None = None
        for u in g:
            if not u.heading:
                h = sections[u.key[0]].heading
                path = h if path is None else _common(path, h)
        if path is None:
            path = sections[g[0].key[0]].heading
        meta.append((block_pages[g[0].key[1]], " > ".join(path) if path else None))
        spans.append((g[0].start, g[-1].end, gi))
    newlines = [m.start() for m in re.finditer("\n", text)]
    chunks = []
    for i, (a, b, n, gi) in enumerate(_enforce_limit(text, spans, token_spans, config.max_tokens)):
        page, heading = meta[gi]
        chunks.append(Chunk(ord=i, text=text[a:b], start_char=a, end_char=b,
                            start_line=bisect.bisect_left(newlines, a) + 1,
                            end_line=bisect.bisect_left(newlines, b - 1) + 1, n_tokens=n,
                            page=page, heading=heading))
    return chunks


def chunk_text(text: str, token_spans: TokenSpans, config: ChunkingConfig) -> list[Chunk]:
    """Cut plain prose: boundaries on paragraphs first, sentences second, words last."""
    return chunk_document(text, (), token_spans, config)
