"""One reader per format: bytes of a file → ``Extracted`` (the document text and its blocks).

Readers never see paths, only bytes that were read once, so a file that changes while it is read
cannot produce a half-old, half-new document (see ``ingest.read_bytes``). A reader refuses what
it cannot read by raising ``Unreadable`` with a one-line reason; any other exception a
third-party parser raises on a broken file is turned into such a reason by ``extract``.
Heavy libraries (pypdf, python-docx, lxml) are imported only when a file of their type is read.
See docs/formats.md.
"""
from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterable

from .base import Extracted, Unreadable, decode, first_line

__all__ = ["Extracted", "Unreadable", "decode", "extract", "kind_of", "binary_suffix", "KINDS", "SUFFIXES"]

CODE_SUFFIXES = """
.py .pyi .js .mjs .cjs .jsx .ts .tsx .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh
.cs .fs .swift .m .mm .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hs .ml .clj .el .vim
.sh .bash .zsh .fish .ps1 .bat .sql .graphql .proto .toml .yaml .yml .ini .cfg .conf .json .xml
.css .scss .less .vue .svelte .cmake .gradle .dockerfile .awk .sed .tcl .mk
""".split()
TEXT_SUFFIXES = ".txt .text .log .csv .tsv .adoc .asciidoc .org .tex".split()

SUFFIXES: dict[str, str] = {
    **{s: "code" for s in CODE_SUFFIXES},
    **{s: "text" for s in TEXT_SUFFIXES},
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".ipynb": "notebook",
}
# Files known by name rather than suffix (compared without case, before the first dot, so that
# README, readme.Debian and changelog.Debian.gz are all read).
TEXT_NAMES = frozenset("""readme license licence copying copyright notice changelog changes news authors
contributors contributing todo thanks install history bugs faq""".split())
CODE_NAMES = frozenset("makefile dockerfile justfile rakefile gemfile vagrantfile".split())

# Types known to hold no text: skipped by name, never read. Any other file whose name gives no type
# is read when its content sniffs as text (``walk.read_document``).
BINARY_SUFFIXES = frozenset("""
.png .jpg .jpeg .gif .bmp .tif .tiff .webp .ico .icns .heic .psd .xcf .raw .cr2 .nef
.mp3 .mp4 .m4a .m4v .wav .flac .ogg .oga .opus .avi .mov .mkv .webm .wmv .mpg .mpeg
.zip .tar .tgz .bz2 .xz .zst .7z .rar .jar .war .whl .egg .deb .rpm .apk .dmg .iso .img .cab .msi
.exe .dll .so .dylib .a .o .obj .lib .class .pyc .pyo .pyd .wasm .bin .elf
.ttf .otf .woff .woff2 .eot .sqlite .sqlite3 .db .mdb .parquet .feather .npy .npz .pkl .pickle .h5 .hdf5
.pt .pth .onnx .safetensors .ckpt .faiss .xls .xlsx .ppt .pptx .doc .odt .ods .odp .epub .mobi
""".split())

KINDS = ("text", "markdown", "rst", "code", "html", "pdf", "docx", "notebook")
_MODULES = {"text": "plain", "code": "plain", "markdown": "markdown", "rst": "rst", "html": "html",
            "pdf": "pdf", "docx": "docx", "notebook": "notebook"}


def kind_of(name: str, extra_suffixes: Iterable[str] = (), extra_names: Iterable[str] = ()) -> str | None:
    """The reader for a file name, or None when the name gives no type (the walk then sniffs the
    content, or skips a known binary type).

    ``name.gz`` is read as ``name`` decompressed. ``extra_suffixes`` and ``extra_names`` (glob
    patterns, from ``--ext``) are read as plain text."""
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    dot = lower.rfind(".")
    suffix = lower[dot:] if dot > 0 else ""
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if (suffix and suffix in extra_suffixes) or any(fnmatch.fnmatch(name.lower(), n) or fnmatch.fnmatch(lower, n)
                                                     for n in extra_names):
        return "text"
    stem = lower.lstrip(".").split(".", 1)[0]
    if stem in TEXT_NAMES:
        return "text"
    if stem in CODE_NAMES:
        return "code"
    return None


def binary_suffix(name: str) -> str | None:
    """The suffix of a name that marks a known binary type (``.png``, ``.zip``...), else None."""
    lower = name.lower().removesuffix(".gz")
    dot = lower.rfind(".")
    return lower[dot:] if dot > 0 and lower[dot:] in BINARY_SUFFIXES else None


def extract(kind: str, data: bytes) -> Extracted:
    """Run the reader of ``kind`` on a file's bytes; every failure becomes ``Unreadable``."""
    module = importlib.import_module(f".{_MODULES[kind]}", __name__)
    try:
        out: Extracted = module.read(data, kind)
    except Unreadable:
        raise
    except MemoryError:
        raise Unreadable(f"too large: not enough memory to read this {kind} file") from None
    except RecursionError:
        raise Unreadable(f"corrupt {_LABEL.get(kind, kind)}: nested too deeply to read") from None
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything on broken input
        raise Unreadable(f"corrupt {_LABEL.get(kind, kind)}: {first_line(exc)}") from None
    if not out.text.strip():
        raise Unreadable("no extractable text" if kind in ("pdf", "docx", "html", "notebook") else "empty file")
    return out


_LABEL = {"pdf": "PDF", "docx": "DOCX", "html": "HTML", "notebook": "notebook", "markdown": "Markdown",
          "rst": "reStructuredText"}
