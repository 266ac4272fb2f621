"""The image reader: a picture's bytes → a small RGB copy, its size, EXIF date and perceptual hash.

Images are documents of their own kind, never text: they are read only when the index has an
image model (``searcher index --image-model``) and go to the image vector space, not to chunking.
Hostile input is bounded before any pixel is decoded: ``Image.open`` only parses the header, so
the size that will be decoded is checked against ``MAX_PIXELS`` first. A JPEG is decoded at a reduced
scale (``Image.draft``: 1/2 to 1/8 inside the decoder), so a 24 MP photo never exists in memory at
full size, and a 100 MP one is read at 1/8 (its limit applies to that reduced size). Everything Pillow raises on a broken file (truncated data, bad chunks, a declared size
it refuses) becomes an ``Unreadable`` reason. See docs/images.md.
"""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from .base import Unreadable, first_line

IMAGE_SUFFIXES = frozenset(".jpg .jpeg .png .webp .gif .bmp .tif .tiff".split())
MAX_PIXELS = 40_000_000     # declared width × height above this is refused unread (a 20,000² PNG is 400 MP)
KEEP_SIDE = 512             # the copy kept for embedding and hashing: longest side at most this
_EXIF_IFD, _DATETIME_ORIGINAL, _DATETIME = 0x8769, 0x9003, 0x0132
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image suffixes read with an image model."""
    lower = name.lower()
    dot = lower.rfind(".")
    return dot > 0 and lower[dot:] in IMAGE_SUFFIXES


@dataclass(frozen=True)
class Picture:
    """What the image reader keeps of a file: its pixels, reduced, and what locates and groups it."""

    pixels: Any                  # PIL.Image.Image, RGB, longest side ≤ KEEP_SIDE
    width: int                   # the file's own size, in pixels
    height: int
    taken: str | None            # EXIF DateTimeOriginal (else DateTime) as ISO 8601, no time zone
    phash: bytes                 # 64-bit DCT perceptual hash (imagehash.phash), 8 bytes big-endian


def exif_date(im: Any) -> str | None:
    """EXIF DateTimeOriginal, else DateTime, as ``YYYY-MM-DDTHH:MM:SS``; None when absent or malformed."""
    try:
        exif = im.getexif()
        value = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # noqa: BLE001 - a damaged EXIF block loses the date, not the picture
        return None
    m = _EXIF_DATE.match(str(value or "").strip())
    return "{}-{}-{}T{}:{}:{}".format(*m.groups()) if m and m.group(1) != "0000" else None


def _rgb(im: Any) -> Any:
    """RGB pixels; transparent parts become white (as a viewer shows them), not black."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return im.convert("RGB")


def read_picture(data: bytes, max_pixels: int = MAX_PIXELS) -> Picture:
    """Decode an image file's bytes (the first frame of an animation or multi-page TIFF)."""
    import imagehash
    from PIL import Image

    # the size is checked here, before decoding; Pillow's warning about sizes it finds large is noise
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        im = Image.open(io.BytesIO(data))          # the header only: nothing decoded yet
        width, height = im.size
        if im.format == "JPEG":
            im.draft("RGB", (KEEP_SIDE, KEEP_SIDE))   # decode at 1/2..1/8 scale, never below KEEP_SIDE
        if im.size[0] * im.size[1] > max_pixels:      # what will be decoded (a JPEG: at its reduced scale)
            raise Unreadable(f"too large: {width}×{height} pixels > limit {max_pixels / 1e6:g} MP")
        taken = exif_date(im)
        im.load()
        pixels = _rgb(im)
        pixels.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS)
        phash = int(str(imagehash.phash(pixels)), 16).to_bytes(8, "big")
    except Unreadable:
        raise
    except Image.UnidentifiedImageError:
        raise Unreadable("corrupt image: not an image in a format Pillow reads") from None
    except Image.DecompressionBombError as exc:
        raise Unreadable(f"too large: {first_line(exc)}") from None
    except MemoryError:
        raise Unreadable("too large: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError... on broken files
        raise Unreadable(f"corrupt image: {first_line(exc)}") from None
    return Picture(pixels, width, height, taken, phash)


THUMBNAIL_SIDES = (32, 512)     # the smallest and largest thumbnail side served


def thumbnail(data: bytes, side: int) -> bytes:
    """A JPEG of the picture, longest side at most ``side`` (clamped to ``THUMBNAIL_SIDES``), decoded
    under the same bounds as indexing."""
    side = max(THUMBNAIL_SIDES[0], min(THUMBNAIL_SIDES[1], int(side)))
    im = read_picture(data).pixels.copy()
    im.thumbnail((side, side))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()
