"""What a media file really is, from its first bytes (magic numbers), never from its name alone.

`sniff(head)` names the content type of the formats the labeling tags play (images, audio,
video, PDF). `family_of_name` says what a file name claims, so a `.png` whose bytes are audio,
HTML or anything unknown is refused with both facts in the message.
"""

from __future__ import annotations

import codecs
import re
from pathlib import PurePosixPath

# Bytes read before deciding; text formats (SVG) need a little room for an XML prolog.
HEAD_BYTES = 4096

# Extension of the stored file for each content type (names are generated, never the upload's).
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "image/svg+xml": ".svg",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/aac": ".aac",
    "audio/mp4": ".m4a",
    "audio/webm": ".weba",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/ogg": ".ogv",
    "video/x-msvideo": ".avi",
    "application/pdf": ".pdf",
}

# What a file name's extension claims: the family (image, audio, video, pdf) it must sniff as.
NAME_FAMILIES = {
    **{ext: "image" for ext in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".svg")},
    **{ext: "audio" for ext in (".wav", ".mp3", ".ogg", ".oga", ".flac", ".aac", ".m4a", ".weba", ".opus")},
    **{ext: "video" for ext in (".mp4", ".m4v", ".mov", ".webm", ".ogv", ".avi", ".mkv")},
    ".pdf": "pdf",
}

_HTML = re.compile(rb"<(!doctype\s+html|html|head|body|script|iframe|meta|title|div|a\s)", re.IGNORECASE)
# An HTML document dressed as SVG. Scripts inside a real SVG are no reason to refuse it: SVG is
# only ever served as a sandboxed attachment (media/router.py), and an <img> never runs them.
_HTML_DOCUMENT = re.compile(rb"<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE)
_SVG_START = re.compile(rb"^(?:<\?xml[^>]*>|<!--.*?-->|<!doctype\s+svg[^>]*>|\s)*<svg[\s>]", re.IGNORECASE | re.DOTALL)


def family(content_type: str) -> str:
    """image | audio | video | pdf."""
    return "pdf" if content_type == "application/pdf" else content_type.split("/", 1)[0]


def family_of_name(name: str) -> str | None:
    return NAME_FAMILIES.get(PurePosixPath(name).suffix.lower())


def sniff(head: bytes, name: str = "") -> str | None:
    """The content type the bytes show, or None when they are no media format we serve."""
    suffix = PurePosixPath(name).suffix.lower()
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head[:2] == b"BM" and len(head) >= 14 and int.from_bytes(head[2:6], "little") >= 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "video/ogg" if suffix == ".ogv" else "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return "audio/webm" if suffix == ".weba" else "video/webm"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        # MPEG audio frame sync; ADTS AAC has layer bits 00.
        return "audio/aac" if len(head) >= 2 and head[1] & 0x06 == 0 else "audio/mpeg"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _SVG_START.match(text) and not _HTML_DOCUMENT.search(text):
        return "image/svg+xml"
    return None


def describe(head: bytes) -> str:
    """What unknown bytes look like, for the refusal message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "the file is empty"
    if _HTML.search(text[:1024]) and text.startswith(b"<"):
        return "its bytes are HTML"
    if text.startswith(b"<"):
        return "its bytes are XML or HTML, not a media format"
    try:
        # Incremental: the head may end inside a character.
        binary = b"\x00" in head or codecs.getincrementaldecoder("utf-8")().decode(head) is None
    except UnicodeDecodeError:
        binary = True
    if binary:
        return "its bytes match no supported image, audio, video or PDF format"
    return "its bytes are text, not a media format"
