"""Structure-aware chunking of real documents with the real tokenizer: boundaries, heading paths,
pages, code, sentences, and the invariants that every chunk keeps."""
from __future__ import annotations

from pathlib import Path

import pytest

from searcher.ingest.chunking import ChunkingConfig, chunk_document, sentences
from searcher.ingest.readers import extract

from . import makefiles as mk


def _chunks(encoder, kind: str, data: bytes, max_tokens: int, overlap: int = 0):
    ex = extract(kind, data)
    chunks = chunk_document(ex.text, ex.blocks, encoder.token_spans, ChunkingConfig(max_tokens, overlap),
                            hard_pages=ex.page_unit == "page")
    for c in chunks:   # the invariants every chunk of every format keeps
        assert ex.text[c.start_char:c.end_char] == c.text
        assert c.start_line == ex.text.count("\n", 0, c.start_char) + 1
        assert c.end_line == ex.text.count("\n", 0, c.end_char - 1) + 1
        assert len(encoder.token_spans([c.text])[0]) == c.n_tokens <= max_tokens
    return ex, chunks


def _para(topic: str, n: int = 3) -> str:
    return " ".join(f"This sentence number {i} explains {topic} in some detail." for i in range(n))


def test_markdown_chunks_follow_sections_and_know_their_heading_path(encoder):
    md = (f"# Manual\n\n{_para('the manual')}\n\n## Install\n\n{_para('installing')}\n\n"
          f"### Linux\n\n{_para('linux packages')}\n\n### macOS\n\n{_para('mac homebrew')}\n\n"
          f"## Usage\n\n{_para('usage')}\n")
    ex, chunks = _chunks(encoder, "markdown", md.encode(), 60)
    got = [(c.heading, c.text.split("\n")[0], c.start_line) for c in chunks]
    assert got == [("Manual", "# Manual", 1), ("Manual > Install", "## Install", 5),
                   ("Manual > Install > Linux", "### Linux", 9), ("Manual > Install > macOS", "### macOS", 13),
                   ("Manual > Usage", "## Usage", 17)]
    # every section fits its own chunk, so no chunk holds text of two sections
    assert all(c.text.count("\n#") == 0 for c in chunks)


def test_a_long_section_is_cut_at_paragraphs_and_keeps_its_heading(encoder):
    paras = "\n\n".join(_para(f"topic {i}", 2) for i in range(6))
    md = f"# Guide\n\n## Install\n\n{paras}\n\n## Next\n\n{_para('what comes next')}\n"
    _, chunks = _chunks(encoder, "markdown", md.encode(), 60)
    install = [c for c in chunks if c.heading == "Guide > Install"]
    assert len(install) >= 3
    assert install[0].text.startswith("# Guide\n\n## Install\n\nThis sentence")   # headings stay with their text
    assert all(c.text.startswith(("This sentence", "# Guide")) and c.text.endswith(".") for c in install)
    assert chunks[-1].heading == "Guide > Next" and chunks[-1].text.startswith("## Next")


def test_tiny_sections_share_a_chunk_only_with_a_sibling_or_parent(encoder):
    md = ("# Changelog\n\n## 1.0.2\n\nFixed a crash.\n\n## 1.0.1\n\nFixed a typo.\n\n"
          "# Other document part\n\nUnrelated tiny text.\n")
    _, chunks = _chunks(encoder, "markdown", md.encode(), 100)
    assert [(c.heading, c.text.count("##")) for c in chunks] == [("Changelog", 2), ("Other document part", 0)]


def test_fenced_code_is_kept_whole_when_it_fits(encoder):
    code = "\n".join(f"    value_{i} = compute_{i}(value_{i - 1})" for i in range(1, 7))
    md = (f"# Doc\n\n{_para('the first step', 2)}\n\n```python\ndef run():\n{code}\n    return value_6\n```\n\n"
          f"{_para('the last step', 2)}\n")
    _, chunks = _chunks(encoder, "markdown", md.encode(), 110)
    fence = md[md.index("```python"):md.index("```\n\n") + 3]
    holders = [c for c in chunks if "```python" in c.text]
    assert len(holders) == 1 and fence in holders[0].text
    assert all(("def run" in c.text) == (c is holders[0]) for c in chunks)


def test_code_is_split_at_top_level_definitions(encoder):
    funcs = [f"def function_{i}(argument):\n    \"\"\"Compute result {i} from the argument.\"\"\"\n"
             f"    total = argument * {i} + {i}\n    return total\n" for i in range(6)]
    src = "import os\n\n\n" + "\n\n".join(funcs) + "\n\nclass Holder:\n    def get(self):\n        return 1\n"
    ex, chunks = _chunks(encoder, "code", src.encode(), 70)
    assert len(chunks) > 2
    for c in chunks:
        first = c.text.split("\n")[0]
        assert first.startswith(("import os", "def function_", "class Holder")), first
        assert c.heading is None and c.page is None
    # every definition is whole in exactly one chunk
    for i in range(6):
        assert sum(f"def function_{i}(argument)" in c.text and f"* {i} + {i}" in c.text for c in chunks) == 1


def test_a_definition_too_long_for_one_chunk_is_cut_between_its_methods(encoder):
    methods = "\n\n".join(f"    def method_{i}(self):\n        return self.values[{i}] * {i}" for i in range(12))
    src = f"class Big:\n    \"\"\"A class with many methods.\"\"\"\n\n{methods}\n"
    _, chunks = _chunks(encoder, "code", src.encode(), 60)
    assert len(chunks) >= 3 and chunks[0].text.startswith("class Big:")
    for c in chunks[1:]:
        assert c.text.startswith("def method_")


def test_pdf_chunks_never_cross_pages_and_carry_page_and_heading(encoder, tmp_path: Path):
    _, chunks = _chunks(encoder, "pdf", mk.pdf(tmp_path / "p.pdf").read_bytes(), 200)
    assert [(c.page, c.heading) for c in chunks] == [(1, "1 Introduction"), (2, "2 Methods"), (3, "3 Results")]
    assert "radar" in chunks[1].text and "radar" not in chunks[0].text + chunks[2].text


def _by_heading(chunks) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in chunks:
        out[c.heading] = out.get(c.heading, "") + "\n" + c.text
    return out


def test_html_and_docx_chunks_carry_heading_paths(encoder, tmp_path: Path):
    _, chunks = _chunks(encoder, "html", mk.HTML.encode(), 30)
    by_heading = _by_heading(chunks)
    assert "Run the installer as root." in by_heading["Station manual > Install > Linux"]
    assert "check the cable" in by_heading["Station manual > Troubleshooting"]
    _, chunks = _chunks(encoder, "docx", mk.docx(tmp_path / "g.docx").read_bytes(), 30)
    by_heading = _by_heading(chunks)
    assert "apt install weather-station" in by_heading["Field Guide > Install > Linux"]
    assert "Thermometer | -40 to 60 degrees" in by_heading["Field Guide > Install > Linux"]


def test_notebook_chunks_know_their_cell(encoder, tmp_path: Path):
    _, chunks = _chunks(encoder, "notebook", mk.notebook(tmp_path / "n.ipynb").read_bytes(), 30)
    assert [(c.page, c.heading) for c in chunks] == [(1, "Analysis"), (3, "Analysis > Plot")]
    assert "pd.read_csv" in chunks[0].text   # a small code cell shares the chunk of the cell before


@pytest.mark.parametrize("text,expected", [
    ("Pi is 3.14159 exactly. Next one.", ["Pi is 3.14159 exactly.", "Next one."]),
    ("Dr. Smith met Mr. Jones at 5 p.m. on Friday. They talked.", ["Dr. Smith met Mr. Jones at 5 p.m. on Friday.", "They talked."]),
    ("The U.S. Army arrived, e.g. at dawn, i.e. early. Done.", ["The U.S. Army arrived, e.g. at dawn, i.e. early.", "Done."]),
    ("See https://example.com/docs/v1.2/index.html?q=a.b for more. Then stop!",
     ["See https://example.com/docs/v1.2/index.html?q=a.b for more.", "Then stop!"]),
    ("Version 2.0.1 is out. Really?", ["Version 2.0.1 is out.", "Really?"]),
    ("日本語の文です。次の文！質問ですか？はい…終わり", ["日本語の文です。", "次の文！", "質問ですか？", "はい…", "終わり"]),
    ("「引用です。」と彼は言った。", ["「引用です。」", "と彼は言った。"]),
])
def test_sentences(text, expected):
    assert [text[a:b] for a, b in sentences(text, 0, len(text))] == expected


def test_ten_thousand_tiny_paragraphs_and_a_very_long_line_finish(encoder):
    text = "\n\n".join(f"Item {i}." for i in range(10_000))
    ex, chunks = _chunks(encoder, "text", text.encode(), 254)
    assert 50 < len(chunks) < 1000 and chunks[-1].text.endswith("Item 9999.")
    line = "".join(f"token{i % 97}=value{i % 89};" for i in range(60_000))   # ~1.3 MB, no space, no newline
    ex, chunks = _chunks(encoder, "code", line.encode(), 254)
    assert len(chunks) > 100 and chunks[0].start_char == 0 and chunks[-1].end_char == len(line)


def test_human_locations_per_format():
    from searcher.records import Hit

    def where(path, lines=(120, 130), page=None, heading=None):
        return Hit(id=path, path=path, score=1.0, text="", lines=lines, page=page, heading=heading).location()

    assert where("/d/guide.md", heading="Install > Linux") == ":120 (Install > Linux)"
    assert where("/d/paper.pdf", page=7, heading="2 Methods") == " p.7 (2 Methods)"
    assert where("/d/nb.ipynb", page=4) == " cell 4"
    assert where("/d/page.html", heading="Install") == " (Install)"
    assert where("/d/report.docx") == ""
    assert where("/d/NEWS.md.gz") == ":120"
