"""Preprocessing without OCR: card finding, rectification, rotation mapping, quality."""

from __future__ import annotations

import json

import cv2
import numpy as np
from conftest import FIXTURES

from ocr.preprocess import (
    Prepared,
    assess_quality,
    find_document_quad,
    prepare,
    text_angle,
    zoom_on_text,
)


def _truth():
    for line in (FIXTURES / "idcards" / "truth.jsonl").read_text().splitlines():
        yield json.loads(line)


def test_card_corners_found_in_photos():
    found = close = total = 0
    for t in _truth():
        if t["variant"] != "photo":
            continue
        total += 1
        quad = find_document_quad(cv2.imread(str(FIXTURES / "idcards" / t["file"])))
        if quad is None:
            continue
        found += 1
        want = np.array(t["card_quad"])
        deviation = min(np.abs(np.roll(quad, k, axis=0) - want).max() for k in range(4))
        close += deviation < 30
    assert found >= 0.75 * total and close == found, (found, close, total)


def test_no_card_invented_inside_a_full_frame_scan():
    for t in _truth():
        if t["variant"] == "clean" and not t["render"].get("on_scanner_bed"):
            img = cv2.imread(str(FIXTURES / "idcards" / t["file"]))
            assert find_document_quad(img) is None, t["file"]


def test_rotation_keeps_the_mapping_to_the_original():
    img = np.zeros((100, 200, 3), np.uint8)
    base = Prepared(image=img, to_original=np.eye(3))
    for k in range(4):
        turned = base.rotated(k)
        h, w = turned.image.shape[:2]
        corners = [(0.0, 0.0), (w - 1.0, 0.0), (w - 1.0, h - 1.0), (0.0, h - 1.0)]
        mapped = {(round(x), round(y)) for x, y in turned.map_polygon(corners)}
        assert mapped == {(0, 0), (199, 0), (199, 99), (0, 99)}, k


def test_quality_verdicts():
    rng = np.random.default_rng(1)
    sharp = (rng.random((400, 640)) > 0.5).astype(np.uint8) * 200 + 30
    sharp = cv2.cvtColor(sharp, cv2.COLOR_GRAY2BGR)
    ok = assess_quality(sharp, prepare(sharp))
    assert ok.metrics["blur"].verdict == "ok"
    blurred = cv2.GaussianBlur(sharp, (0, 0), 8)
    assert assess_quality(blurred, prepare(blurred)).metrics["blur"].verdict == "fail"
    dark = (sharp * 0.15).astype(np.uint8)
    assert assess_quality(dark, prepare(dark)).metrics["brightness"].verdict == "fail"
    tiny = cv2.resize(sharp, (160, 100))
    assert assess_quality(tiny, prepare(tiny)).metrics["too_small"].verdict == "fail"
    grey = cv2.cvtColor(cv2.cvtColor(sharp, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert assess_quality(grey, prepare(grey)).metrics["black_and_white"].verdict == "warn"
    glare = np.full((400, 640, 3), 180, np.uint8)
    cv2.circle(glare, (320, 200), 60, (255, 255, 255), -1)
    assert assess_quality(glare, prepare(glare)).metrics["glare"].verdict in ("warn", "fail")


def test_white_cells_of_a_brightly_lit_form_are_no_glare():
    """A photographed form whose paper is nearly white: the cells inside its rules are
    clipped white like a reflection, but the paper around them is as white (seen on 6 of
    24 phone photos of wide forms, seed 816, each then sent to a person for "glare")."""
    from ocr.preprocess import _glare_fraction

    form = np.full((800, 600, 3), 244, np.uint8)
    for top in range(100, 460, 120):  # rows of cells: whiter inside black rules
        cv2.rectangle(form, (60, top), (540, top + 100), (20, 20, 20), 3)
        form[top + 4:top + 97, 64:537] = 252
    assert _glare_fraction(form) == 0.0
    # A reflection on the same form under dimmer light outshines the paper around it.
    dim = (form.astype(np.float32) * 0.85).astype(np.uint8)
    cv2.circle(dim, (300, 600), 90, (255, 255, 255), -1)
    assert _glare_fraction(dim) > 0.03


def _printed_page(paper: np.ndarray) -> np.ndarray:
    """Lines of black print on ``paper`` (a float page, one value per pixel)."""
    page = np.repeat(paper[..., None], 3, axis=2)
    for top in range(60, paper.shape[0] - 60, 40):
        for left in range(40, paper.shape[1] - 80, 26):
            page[top:top + 18, left:left + 3] = 30  # strokes of a character
            page[top + 8:top + 11, left:left + 18] = 30
    return page


def test_paper_clipped_by_uneven_light_keeps_its_print_and_is_no_glare():
    """A phone photo lit from one side: the bright half of the page clips to white and
    outshines the rest, but its print stays black, so nothing is washed out (3 of 48
    phone photos of wide forms, seed 717, were each sent to a person for "glare")."""
    from ocr.preprocess import _glare_fraction

    h, w = 900, 640
    light = np.linspace(1.12, 0.92, w, dtype=np.float32)[None, :].repeat(h, axis=0)
    page = np.clip(_printed_page(np.full((h, w), 235, np.float32)) * light[..., None], 0, 255)
    page[:12], page[-12:], page[:, :12], page[:, -12:] = 200, 200, 200, 200  # its edge
    assert _glare_fraction(page.astype(np.uint8)) < 0.005


def test_a_reflection_that_washes_print_out_is_glare():
    """The same printed page under even light with a reflection on it: the paper clips
    and the print under it turns light grey."""
    from ocr.preprocess import _glare_fraction

    h, w = 900, 640
    page = _printed_page(np.full((h, w), 228, np.float32))
    spot = np.zeros((h, w), np.uint8)
    cv2.ellipse(spot, (320, 450), (170, 100), 20, 0, 360, 1, -1)
    page = page + (255 - page) * (0.88 * spot)[..., None]  # black 30 -> 228, paper clips
    assert _glare_fraction(page.astype(np.uint8)) >= 0.03


def test_a_white_cell_brighter_than_the_shaded_labels_above_it_is_no_glare():
    """A grid form: a shaded band of labels, then a white cell for the value, which a
    bright photo clips; the cell is a rectangle, a reflection is round."""
    from ocr.preprocess import _glare_fraction

    form = np.full((800, 600, 3), 236, np.uint8)
    for top in range(100, 700, 100):
        form[top:top + 40, 60:540] = 215  # the band of labels
        form[top + 40:top + 90, 60:540] = 252  # the value's cell, empty
        cv2.rectangle(form, (60, top), (540, top + 90), (120, 120, 120), 1)
    assert _glare_fraction(form) < 0.005



def test_pale_page_on_a_pale_table_is_found():
    """A white form photographed on a light desk (generator seed 11, form 6, the grid
    layout): the page's outline is faint and breaks up, and the print block inside it
    has the strong edges. The page is found, not the print block, and not nothing."""
    from fixtures.generator.build import claim_outputs

    (photo,) = claim_outputs(11, 6, ["photo"], layouts=("grid",))
    img = cv2.imdecode(np.frombuffer(photo.data, np.uint8), cv2.IMREAD_COLOR)
    quad = find_document_quad(img)
    assert quad is not None
    want = np.array(photo.truth["page_quad"])
    deviation = min(np.abs(np.roll(quad, k, axis=0) - want).max() for k in range(4))
    assert deviation < 40, (quad, want)


def test_a_bright_page_with_black_print_is_not_overexposed():
    """A sparse form scanned on white paper averages above 245 (seed 816, form 7, sent to
    a person for "brightness"); an overexposed image has its print washed out too."""
    scan = np.full((800, 600, 3), 251, np.uint8)
    cv2.putText(scan, "FORM 12345", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (10, 10, 10), 3)
    assert assess_quality(scan, prepare(scan)).metrics["brightness"].verdict == "ok"
    washed = np.full((800, 600, 3), 251, np.uint8)
    cv2.putText(washed, "FORM 12345", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (200, 200, 200), 3)
    assert assess_quality(washed, prepare(washed)).metrics["brightness"].verdict == "fail"


def _line(cx: float, cy: float, length: float, height: float, degrees: float):
    """A text line's quadrilateral: ``length`` by ``height`` about (cx, cy), turned."""
    a = np.radians(degrees)
    u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    c = np.array([cx, cy])
    return [tuple(c + sx * length / 2 * u + sy * height / 2 * v)
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def test_the_slope_of_text_lines_is_their_long_edges():
    assert abs(text_angle([_line(300, 200, 200, 20, 35), _line(320, 240, 150, 20, 37)]) - 36) < 0.5
    assert abs(text_angle([_line(300, 200, 200, 20, -20)]) + 20) < 0.5
    # lines turned a quarter count as level: the quarter turn is decided elsewhere
    assert abs(text_angle([_line(300, 200, 200, 20, 90)])) < 0.5
    assert text_angle([_line(300, 200, 30, 25, 20)]) == 0.0  # no line long enough


def test_small_turned_text_is_levelled_and_enlarged_with_its_mapping_kept():
    page = np.full((1000, 800, 3), 200, np.uint8)
    lines = [_line(400, 500, 180, 14, 30), _line(390, 530, 140, 14, 30)]
    zoomed = zoom_on_text(Prepared(image=page, to_original=np.eye(3)), lines)
    assert zoomed is not None and max(zoomed.image.shape[:2]) <= 961
    # the text's centre lands inside the zoomed view, and maps back where it was
    forward = np.linalg.inv(zoomed.to_original)
    for quad in lines:
        pts = np.float64(quad).reshape(-1, 1, 2)
        there = cv2.perspectiveTransform(pts, forward).reshape(-1, 2)
        h, w = zoomed.image.shape[:2]
        assert (there >= 0).all() and (there[:, 0] < w).all() and (there[:, 1] < h).all()
        back = zoomed.map_polygon(there.tolist())
        assert np.allclose(back, quad, atol=0.2)
        # and it is level: the long edge runs along x
        dx, dy = there[1] - there[0]
        assert abs(dy) < 0.02 * abs(dx)
        assert np.hypot(dx, dy) > 2.0 * 180 * 0.7  # enlarged
    # text that fills the frame already, level: nothing to do
    wide = [_line(400, 300 + 40 * k, 700, 20, 0) for k in range(8)]
    assert zoom_on_text(Prepared(image=page, to_original=np.eye(3)), wide) is None
    assert zoom_on_text(Prepared(image=page, to_original=np.eye(3)), []) is None
