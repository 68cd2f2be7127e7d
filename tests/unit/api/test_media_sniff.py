"""Media types come from the bytes; a name only decides media vs task file and must agree with them."""

from __future__ import annotations

import pytest

from api_server.media.multipart import Limits, is_media
from api_server.media.sniff import describe, family, family_of_name, sniff


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a.png", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a.jpg", "image/jpeg"),
        (b"GIF89a\x01\x00", "a.gif", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.wav", "audio/wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "a.avi", "video/x-msvideo"),
        (b"ID3\x04\x00\x00\x00\x00", "a.mp3", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "a.mp3", "audio/mpeg"),
        (b"\xff\xf1\x50\x80", "a.aac", "audio/aac"),
        (b"fLaC\x00\x00\x00\x22", "a.flac", "audio/flac"),
        (b"OggS\x00\x02", "a.ogg", "audio/ogg"),
        (b"OggS\x00\x02", "a.ogv", "video/ogg"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00", "a.mp4", "video/mp4"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "a.m4a", "audio/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00", "a.mov", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "a.webm", "video/webm"),
        (b"%PDF-1.7\n", "a.pdf", "application/pdf"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "a.svg", "image/svg+xml"),
        (b"<!DOCTYPE html><html><body><svg></svg></body></html>", "a.svg", None),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "cat.png", None),
        (b"just some text", "notes.png", None),
        (b"\x00\x01\x02\x03\x04\x05", "blob.png", None),
        (b"", "empty.png", None),
    ],
)
def test_sniff(head, name, expected):
    assert sniff(head, name) == expected


def test_refusals_say_what_the_bytes_are():
    assert "HTML" in describe(b"<!DOCTYPE html><html>")
    assert "empty" in describe(b"")
    assert "text" in describe(b"hello")
    assert "no supported" in describe(b"\x00\x9f\x92\x96")


def test_names_and_families():
    assert family_of_name("../../x.PNG") == "image" and family_of_name("a.wav") == "audio"
    assert family_of_name("tasks.json") is None and family("application/pdf") == "pdf"
    # Task files stay task files; anything else is media, to be sniffed.
    assert not is_media("tasks.csv", "text/csv") and not is_media("export", "application/json")
    assert is_media("cat.png", "application/json") and is_media("page.html", "text/html")
    assert is_media("noext", "application/octet-stream")


def test_type_limits_take_wildcards():
    limits = Limits.parse(1, 10, "image/*, application/pdf")
    assert limits.accepts("image/png") and limits.accepts("application/pdf")
    assert not limits.accepts("audio/wav") and limits.max_file_bytes == 1 << 20
