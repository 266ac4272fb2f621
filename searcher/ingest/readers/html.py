"""HTML with lxml: the main text of a page, its heading structure and its code, without the
scripts, styles and navigation around it.

Boilerplate removal is deliberately simple and predictable (documentation pages, saved articles
and manuals are what people index, not arbitrary web pages):

1. drop elements that are never content: ``script style noscript template svg canvas iframe
   object embed head form button select textarea dialog nav aside``, elements with a navigation
   ARIA role, ``hidden``/``aria-hidden`` elements, and elements whose class or id names
   navigation, menus, sidebars, breadcrumbs, cookie banners, footers and the like;
   ``header``/``footer`` elements unless they are inside an ``article`` or ``main``;
2. read ``<main>`` (or ``role=main``) if the page has one with real text, else its single
   ``<article>``, else ``<body>``;
3. walk it: ``h1``–``h6`` set the heading path (the ``<title>`` is the root when there is no
   ``h1``), ``pre`` becomes a ``code`` block kept verbatim, data tables a ``lines`` block with one
   row per line (cells joined by `` | ``), every other block element (``p li dd td div``...) a
   paragraph with its white space collapsed as a browser would.

The document text is this extracted text (blocks separated by a blank line); positions and line
numbers index it, not the HTML source. The charset comes from a byte-order mark, then the page's
own ``<meta charset>`` or XML declaration, then detection (see ``base.decode``).
"""
from __future__ import annotations

import re

from .base import Extracted, TextBuilder, Unreadable, clean_heading, decode, heading_path, push_heading

_DROP_TAGS = frozenset("""script style noscript template svg canvas iframe object embed head form button
select textarea dialog nav aside menu""".split())
_NAV_ROLES = frozenset("navigation banner contentinfo complementary search menu menubar toolbar".split())
_BOILERPLATE = re.compile(
    r"(?:^|[-_\s])(?:nav|navbar|navigation|menu|menubar|sidebar|sphinxsidebar|breadcrumbs?|footer|"
    r"site-?header|masthead|cookies?|cookie-?banner|consent|skip-?link|skip|related|pager|pagination|"
    r"social|share|sharing|advert|ads|banner|toc|toc-?sidebar|doc-?sidebar)(?:$|[-_\s])", re.I)
_BLOCK_TAGS = frozenset("""p div section article main body li ul ol dl dt dd blockquote figure figcaption
address details summary center fieldset caption hr header footer tr td th tbody thead tfoot legend
option""".split())
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w.:]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([-\w.:]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")
_BR = "\x01"


def declared_charset(data: bytes) -> str | None:
    head = data[:4096]
    m = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    if not m:
        return None
    label = m.group(1).decode("ascii", "replace").lower()
    # as browsers do (WHATWG): latin-1 and ascii labels mean windows-1252
    return "cp1252" if label in ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii") else label


def read(data: bytes, kind: str) -> Extracted:
    import lxml.etree
    import lxml.html

    text = decode(data, declared_charset(data))
    text = _XML_DECL.sub("", text, count=1)
    if not text.strip():
        raise Unreadable("empty file")
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, recover=True, no_network=True,
                                  huge_tree=True, default_doctype=False)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        raise Unreadable("no extractable text") from None
    title_el = root.find(".//title")
    title = _site_title_removed(clean_heading(title_el.text_content())) if title_el is not None else ""
    _drop_boilerplate(root)
    main = _main_element(root)
    _drop_link_lists(main)
    first = next((clean_heading(h.text_content()) for h in main.iter(*_HEADINGS)), None)
    use_title = title and not main.xpath(".//h1") and (first or "").lower() != title.lower()
    return _Walker(title if use_title else "").run(main)


def _site_title_removed(title: str) -> str:
    """"Buffer | Node.js v20 Documentation" → "Buffer": the part before a site-name separator."""
    return re.split(r"\s+[|\u2014\u2013\u00b7]\s+|\s+-\s+", title, maxsplit=1)[0].strip() if title else title


_LINK_LIST_TAGS = ("ul", "ol", "dl", "table", "td", "div", "p", "h1", "h2", "h3", "h4", "h5", "h6", "center")


def _drop_link_lists(main) -> None:
    """Drop menus that no class or role names (old table layouts): blocks of at least four links
    whose text is almost all link text. Kept when dropping them would leave the page nearly empty
    (an index page that is all links is its own content)."""
    total = len(_SPACE.sub("", main.text_content()))
    doomed, dropped = [], 0
    for el in main.iter(*_LINK_LIST_TAGS):
        if el is main or any(a in doomed for a in el.iterancestors()):
            continue
        links = el.findall(".//a")
        if len(links) < 4:
            continue
        text = len(_SPACE.sub("", el.text_content()))
        linked = sum(len(_SPACE.sub("", a.text_content())) for a in links)
        if text and linked >= 0.9 * text:
            doomed.append(el)
            dropped += text
    if doomed and total - dropped >= max(200, total // 5):
        for el in doomed:
            _remove_keep_tail(el)


def _drop_boilerplate(root) -> None:
    doomed = []
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else None
        if tag is None:
            continue
        if tag in _DROP_TAGS:
            doomed.append(el)
            continue
        if tag in ("header", "footer") and not any(a.tag in ("article", "main") for a in el.iterancestors()):
            doomed.append(el)
            continue
        attrib = el.attrib
        if not attrib or tag in ("body", "html", "main", "article"):
            continue
        role = attrib.get("role", "").lower()
        if role in _NAV_ROLES or "hidden" in attrib or attrib.get("aria-hidden", "").lower() == "true":
            doomed.append(el)
            continue
        style = attrib.get("style", "").replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            doomed.append(el)
            continue
        names = " ".join((attrib.get("class", ""), attrib.get("id", "")))
        if names.strip() and _BOILERPLATE.search(names):
            doomed.append(el)
    for el in doomed:
        parent = el.getparent()
        if parent is not None:
            _remove_keep_tail(el)


def _remove_keep_tail(el) -> None:
    parent = el.getparent()
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _main_element(root):
    body = root.find("body")
    body = body if body is not None else root
    total = len(_SPACE.sub("", body.text_content()))
    for el in root.xpath("//main | //*[@role='main']"):
        n = len(_SPACE.sub("", el.text_content()))
        if n >= 200 or n >= total * 0.5:
            return el
    articles = root.xpath("//article")
    if len(articles) == 1 and len(_SPACE.sub("", articles[0].text_content())) >= total * 0.3:
        return articles[0]
    return body


class _Walker:
    def __init__(self, title: str):
        self.out = TextBuilder()
        self.stack: list[tuple[int, str]] = []
        self.buf: list[str] = []
        if title:
            self.out.add(title, "heading", push_heading(self.stack, 0, title))

    def run(self, el) -> Extracted:
        self.walk(el)
        self.flush()
        return self.out.build()

    @property
    def path(self) -> tuple[str, ...]:
        return heading_path(self.stack)

    def flush(self) -> None:
        if not self.buf:
            return
        text = _SPACE.sub(" ", "".join(self.buf))
        self.buf = []
        text = "\n".join(part.strip() for part in text.split(_BR))
        text = re.sub(r"\n{2,}", "\n", text).strip()
        if text:
            self.out.add(text, "text", self.path)

    def walk(self, el) -> None:
        tag = el.tag if isinstance(el.tag, str) else None
        if tag is None:
            return
        tag = tag.lower()
        if tag in _HEADINGS:
            self.flush()
            title = clean_heading(el.text_content())
            if title:
                self.out.add(title, "heading", push_heading(self.stack, _HEADINGS[tag], title))
        elif tag == "pre":
            self.flush()
            self.out.add(el.text_content().replace("\r\n", "\n").replace("\t", "    "), "code", self.path)
        elif tag == "table" and not el.xpath(".//table | .//p | .//div | .//pre | .//ul | .//ol | "
                                               ".//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6"):
            self.flush()
            rows = []
            for tr in el.iter("tr"):
                cells = [_SPACE.sub(" ", c.text_content()).strip() for c in tr if c.tag in ("td", "th")]
                if any(cells):
                    rows.append(" | ".join(cells))
            caption = el.find("caption")
            if caption is not None and caption.text_content().strip():
                rows.insert(0, _SPACE.sub(" ", caption.text_content()).strip())
            self.out.add("\n".join(rows), "lines", self.path)
        elif tag == "br":
            self.buf.append(_BR)
        elif tag in _BLOCK_TAGS or tag == "table":
            self.flush()
            if el.text:
                self.buf.append(el.text)
            for child in el:
                self.walk(child)
            self.flush()
        else:  # inline
            if el.text:
                self.buf.append(el.text)
            for child in el:
                self.walk(child)
        if el.tail:
            self.buf.append(el.tail)
