"""Safe decoding: sniff the real format, cap bytes, pixels and pages, apply EXIF orientation."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Magic numbers of the formats we accept. The extension is never trusted.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"%PDF-", "pdf"),
    (b"BM", "bmp"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
]
SUPPORTED_FORMATS = {"png", "jpeg", "tiff", "pdf", "bmp", "webp"}
PDF_RENDER_DPI = 200
_PDF_ENCRYPT = re.compile(rb"/Encrypt\s*(\d+\s+\d+\s+R|<<)")
_PDF_PAGES = re.compile(rb"/Type\s*/Pages\b")
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


class DecodeError(Exception):
    """A file that cannot be read as a document. The message is safe to show and store."""

    reason = "undecodable"


class EmptyFile(DecodeError):
    reason = "empty_file"


class UnsupportedFormat(DecodeError):
    reason = "unsupported_format"


class TooLarge(DecodeError):
    reason = "too_large"


class CorruptFile(DecodeError):
    reason = "corrupt"


class TooManyPages(DecodeError):
    reason = "too_many_pages"


class EncryptedFile(DecodeError):
    reason = "encrypted"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 60_000_000
    max_pages: int = 50


@dataclass
class DecodedPage:
    """One page as an upright BGR image (EXIF orientation applied, PDF rendered)."""

    image: np.ndarray
    index: int
    format: str
    exif_transposed: bool = False


def sniff_format(head: bytes) -> str | None:
    """Return the format named by the file's first bytes, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def decode(data: bytes, limits: Limits = Limits()) -> list[DecodedPage]:
    """Decode bytes into pages, or raise a DecodeError with a reason a person can act on."""
    if not data:
        raise EmptyFile("file is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise TooLarge(f"file is {len(data)} bytes, above the limit of {limits.max_bytes}")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise UnsupportedFormat("not a PNG, JPEG, TIFF, BMP, WebP or PDF file (content sniffed)")
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormat(f"{fmt.upper()} files are not accepted; send PNG, JPEG, TIFF or PDF")
    if fmt == "pdf":
        return _decode_pdf(data, limits)
    return _decode_raster(data, fmt, limits)


def _decode_raster(data: bytes, fmt: str, limits: Limits) -> list[DecodedPage]:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            frames = getattr(probe, "n_frames", 1)
    except UnidentifiedImageError as exc:
        raise CorruptFile(f"{fmt.upper()} header cannot be read") from exc
    except Image.DecompressionBombError as exc:
        raise TooLarge("declared image size is a decompression bomb") from exc
    except Exception as exc:  # PIL raises many types on hostile headers
        raise CorruptFile(f"{fmt.upper()} header cannot be read ({type(exc).__name__})") from exc
    # Check the declared size before decoding a single pixel (decompression bombs).
    if width <= 0 or height <= 0:
        raise CorruptFile(f"{fmt.upper()} declares an empty image ({width}x{height})")
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"image is {width}x{height} = {width * height} pixels, "
            f"above the limit of {limits.max_pixels}"
        )
    if frames > limits.max_pages:
        raise TooManyPages(f"file has {frames} frames, above the limit of {limits.max_pages}")
    pages: list[DecodedPage] = []
    try:
        with Image.open(io.BytesIO(data)) as img:
            for index in range(frames):
                img.seek(index)
                transposed = ImageOps.exif_transpose(img)
                exif_applied = transposed is not img and transposed.size != (0, 0)
                pages.append(
                    DecodedPage(_to_bgr(transposed), index, fmt, exif_transposed=exif_applied)
                )
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptFile(f"{fmt.upper()} data is truncated or corrupt ({exc})") from exc
    return pages


def _to_bgr(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode (16-bit, CMYK, palette, alpha) to 8-bit BGR."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        gray = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.dstack([gray, gray, gray]))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Flatten transparency on white, like paper.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _decode_pdf(data: bytes, limits: Limits) -> list[DecodedPage]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # PDFium's error code is process-global and not reset by a failed load: after an
        # encrypted file, the next broken one would also say "password". Read the bytes.
        if _PDF_ENCRYPT.search(data):
            raise EncryptedFile("PDF is encrypted; send an unprotected copy") from exc
        if _PDF_PAGES.search(data) and not _PDF_PAGE.search(data):
            raise CorruptFile("PDF has no pages") from exc
        raise CorruptFile("PDF cannot be opened (damaged or incomplete file)") from exc
    try:
        count = len(pdf)
        if count == 0:
            raise CorruptFile("PDF has no pages")
        if count > limits.max_pages:
            raise TooManyPages(
                f"PDF has {count} pages, above the limit of {limits.max_pages}; split it"
            )
        pages = []
        scale = PDF_RENDER_DPI / 72.0
        for index in range(count):
            page = pdf[index]
            width, height = page.get_size()
            if width * scale * height * scale > limits.max_pixels:
                raise TooLarge(f"PDF page {index + 1} is too large to render")
            bitmap = page.render(scale=scale)
            pil = bitmap.to_pil()
            pages.append(DecodedPage(_to_bgr(pil), index, "pdf"))
        return pages
    finally:
        pdf.close()
