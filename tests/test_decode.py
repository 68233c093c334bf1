"""Safe decoding: real formats, hostile headers, limits. No OCR needed."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ocr.decode import (
    CorruptFile,
    EmptyFile,
    Limits,
    TooLarge,
    TooManyPages,
    UnsupportedFormat,
    decode,
    sniff_format,
)


def _png(w=40, h=30, mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 128).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w=40, h=30, exif_orientation=None) -> bytes:
    img = Image.new("RGB", (w, h), (200, 10, 10))
    buf = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, "JPEG", exif=exif)
    else:
        img.save(buf, "JPEG")
    return buf.getvalue()


def test_sniff_ignores_extension():
    assert sniff_format(_png()[:16]) == "png"
    assert sniff_format(_jpeg()[:16]) == "jpeg"
    assert sniff_format(b"hello world, not an image") is None


def test_png_and_jpeg_decode_to_bgr():
    page = decode(_png())[0]
    assert page.image.shape == (30, 40, 3) and page.image.dtype == np.uint8
    assert decode(_jpeg())[0].format == "jpeg"


def test_exif_orientation_applied():
    # Orientation 6: the camera was turned; the upright image is taller than wide.
    page = decode(_jpeg(40, 30, exif_orientation=6))[0]
    assert page.image.shape[:2] == (40, 30)
    assert page.exif_transposed


def test_empty_text_and_truncated_files_are_refused_with_reasons():
    with pytest.raises(EmptyFile):
        decode(b"")
    with pytest.raises(UnsupportedFormat):
        decode(b"just some text renamed to .jpg\n" * 3)
    with pytest.raises(CorruptFile):
        decode(_jpeg(400, 300)[:300])
    with pytest.raises(CorruptFile):
        decode(_png(400, 300)[:60])


def test_decompression_bomb_refused_before_decoding():
    # A PNG header declaring 100000 x 100000 pixels with almost no data.
    raw = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    raw += struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 4096)
    raw += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    raw += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    with pytest.raises(TooLarge) as err:
        decode(raw)
    assert "pixels" in str(err.value) or "bomb" in str(err.value)


def test_byte_limit():
    with pytest.raises(TooLarge):
        decode(_png(), Limits(max_bytes=10))


def test_sixteen_bit_and_cmyk_tiff():
    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 7).save(buf, "TIFF")
    assert decode(buf.getvalue())[0].image.shape == (48, 64, 3)
    buf = io.BytesIO()
    Image.new("CMYK", (20, 10), (0, 255, 0, 0)).save(buf, "TIFF")
    assert decode(buf.getvalue())[0].image.shape == (10, 20, 3)


def test_gif_refused():
    buf = io.BytesIO()
    frames = [Image.new("P", (10, 10), i) for i in range(3)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedFormat):
        decode(buf.getvalue())


def test_pdf_pages_and_page_limit():
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(3):
        pdf.new_page(200, 100)
    buf = io.BytesIO()
    pdf.save(buf)
    data = buf.getvalue()
    pages = decode(data)
    assert [p.index for p in pages] == [0, 1, 2]
    with pytest.raises(TooManyPages):
        decode(data, Limits(max_pages=2))
    with pytest.raises(CorruptFile):
        decode(b"%PDF-1.4\n garbage")
