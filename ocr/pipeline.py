"""The reading pipeline: decoded page -> prepared image -> OCR -> class -> fields.

Pure: no Prefect, no database. One `read_document` call per file.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from pydantic import BaseModel, Field

from domain import gb11643
from domain.ethnic_groups import ETHNIC_GROUPS, ethnic_log_prior
from domain.fields import FIELDS, FieldFamily, field_family
from domain.given_names import common_given_chars, given_char_log_prior
from domain.models import (
    DocType,
    ExtractedField,
    OcrLine,
    QualityMetric,
    QualityReport,
    RiskReport,
)
from domain.surnames import surname_of, surnames
from domain.validity import LIFETIME, period_years

from .address import ADDRESS_NOTE, TAIL_NOTE, address_tail, choose_region, tail_box
from .around_labels import NOTE as AROUND_LABEL_NOTE
from .around_labels import lines_around
from .calibration import calibrate_fields
from .cells import (
    BACK_ROWS,
    FRONT_ROWS,
    ROW_NOTE,
    authority_from_row,
    birth_from_row,
    card_from_anchors,
    card_row_lines,
    closed_from_row,
    label_runs_into_value,
    missing_rows,
    number_from_line,
    number_note,
    printed_lines,
    sex_by_number,
    sex_from_cell,
    validity_from_row,
)
from .checkbox import relationship_from_boxes
from .classify import classify_text
from .comb import id_number_from_comb
from .decode import DecodedPage, Limits, decode
from .decoders import decode_fields
from .extract import extract
from .extract.claim import label_boxes
from .extract.idcard import address_start
from .lexicon import PLACE_NOTE, near_counties
from .names import (
    GIVEN_NOTE,
    GIVEN_VOCABULARY,
    SURE_NAME,
    SURNAME_NOTE,
    choose_given,
    choose_name,
)
from .preprocess import (
    CARD_WIDTH,
    ID_CARD_ASPECT,
    Prepared,
    assess_quality,
    edge_text_cut,
    order_quad,
    prepare,
    text_orientation,
    zoom_on_text,
)
from .risk import assess_risk
from .text import GUESSED_CONFIDENCE, guessed_by_check_digit


class Recognizer(Protocol):
    def recognize(self, image: np.ndarray) -> list[OcrLine]: ...


@runtime_checkable
class StagedRecognizer(Protocol):
    """An engine whose detection and recognition can be called separately."""

    rec_score_thresh: float

    def detect(self, image: np.ndarray) -> list[np.ndarray]: ...

    def crop(self, image: np.ndarray, poly: np.ndarray) -> np.ndarray: ...

    def read_crops(self, crops: list[np.ndarray]) -> list[tuple[str, float]]: ...


class PageReading(BaseModel):
    """What was read from one page, boxes in the original page's pixels."""

    page: int = 0
    doc_type: DocType = DocType.UNKNOWN
    type_scores: dict[str, float] = Field(default_factory=dict)
    fields: dict[str, ExtractedField] = Field(default_factory=dict)
    quality: QualityReport = Field(default_factory=QualityReport)
    lines: list[OcrLine] = Field(default_factory=list)
    ocr_passes: int = 1
    seconds: float = 0.0
    #: Fraud and risk signals (ocr/risk.py); None when not computed.
    risk: RiskReport | None = None
    #: The portrait cropped from an ID front (JPEG), kept with the document; not dumped.
    portrait_jpeg: bytes | None = Field(default=None, exclude=True, repr=False)


def _confident(doc_type: DocType, scores: dict[str, float]) -> bool:
    return doc_type is not DocType.UNKNOWN and max(scores.values()) >= 0.5


def _attempt_key(doc_type: DocType, scores: dict[str, float], lines: list[OcrLine]):
    text_mass = sum(ln.confidence * len(ln.text) for ln in lines)
    return (doc_type is not DocType.UNKNOWN, round(max(scores.values()), 3), text_mass)


def read_page(image: np.ndarray, engine: Recognizer, page: int = 0,
              risk: bool = True, trace: dict | None = None) -> PageReading:
    """Read one upright-or-not page: try the likely orientation first, others only when
    the text does not look like a known document (so a straight scan costs one pass).
    ``risk``: compute the fraud and risk signals (and crop an ID front's portrait).
    ``trace``: a dict that receives the page as read, for a benchmark that measures a
    stage on it (``image``: the levelled page, ``lines``: its lines in that frame,
    ``to_original``: the 3x3 matrix from that frame to the page's pixels)."""
    start = time.perf_counter()
    prepared = prepare(image)
    h, w = prepared.image.shape[:2]
    if prepared.card_quad is not None and h > w and abs(h / w - ID_CARD_ASPECT) < 0.15:
        prepared = prepared.rotated(1)  # a card is printed landscape
    if isinstance(engine, StagedRecognizer):
        best, passes = _read_staged(engine, prepared)
        if prepared.card_quad is None and not _confident(*best[2:]):
            # No outline and no known text: the text may be too small, or too turned,
            # for the detector to find its lines.
            zoomed = zoom_on_text(best[0], [ln.polygon for ln in best[1]])
            if zoomed is not None:
                again, more = _read_staged(engine, zoomed)
                passes += more
                if _attempt_key(*again[2:], again[1]) > _attempt_key(*best[2:], best[1]):
                    best = again
        if not _confident(*best[2:]) and hasattr(engine, "score_texts"):
            # Its labels all misread: the lines every card prints may still be there.
            anchored = printed_lines(best[0].image, best[1], engine.crop, engine.score_texts)
            if anchored is not None:
                told = classify_text(anchored)
                if _attempt_key(*told, anchored) > _attempt_key(*best[2:], best[1]):
                    best = (best[0], anchored, *told)
    else:
        best, passes = _read_whole(engine, prepared)
    prepared, lines, doc_type, scores = best
    if (prepared.card_quad is None and doc_type in _ANCHOR_SIDES
            and isinstance(engine, StagedRecognizer)):
        # No card outline found (a pale card on a pale desk): its printed lines place it.
        placed = _place_card(engine, image, prepared, lines, doc_type)
        if placed is not None:
            (prepared, lines, doc_type, scores), more = placed
            passes += more
    if trace is not None:
        trace.update(image=prepared.image, lines=lines, to_original=prepared.to_original)
    # Confidence as a probability (ocr/calibration.json); the score it came from is
    # kept in ocr_confidence.
    if (doc_type is DocType.ID_CARD_FRONT and prepared.card_quad is not None
            and isinstance(engine, StagedRecognizer)):
        lines = label_runs_into_value(prepared.image, lines, lambda crops: _read(engine, crops))
    found = extract(doc_type, lines)
    if doc_type is DocType.CLAIM_FORM and isinstance(engine, StagedRecognizer):
        found, lines = _values_around_labels(engine, prepared, found, lines)
    if (doc_type in _CARD_ROWS and prepared.card_quad is not None
            and isinstance(engine, StagedRecognizer)):
        found, lines = _read_empty_rows(engine, prepared, doc_type, found, lines)
    if doc_type is DocType.ID_CARD_FRONT and isinstance(engine, StagedRecognizer):
        found, lines = _address_region(engine, prepared, found, lines)
        found = _number_on_line(engine, prepared, found, lines)
        found, lines = _address_tail(engine, prepared, found, lines)
    if isinstance(engine, StagedRecognizer):
        found = _names(engine, prepared, doc_type, found, lines)
    if doc_type is DocType.CLAIM_FORM and isinstance(engine, StagedRecognizer):
        found = _near_counties(engine, prepared, found, lines)
    fields = calibrate_fields(decode_fields(doc_type, found, lines), doc_type)
    if doc_type is DocType.CLAIM_FORM and fields["relationship"].value is None:
        # A tick the recogniser did not read: the boxes' pixels may show it.
        ticked = relationship_from_boxes(prepared.image, lines)
        if ticked is not None:
            fields.update(calibrate_fields({"relationship": ticked}, doc_type))
    number = fields.get("insured_id_number")
    if (doc_type is DocType.CLAIM_FORM and number is not None
            and not gb11643.is_valid(number.value or "") and isinstance(engine, StagedRecognizer)):
        # No valid number read: it may be printed one digit per box, and the detector
        # have cut it into pieces.
        comb = id_number_from_comb(prepared.image, lines, engine.read_crops)
        if comb is not None:
            fields.update(calibrate_fields({"insured_id_number": comb}, doc_type))
    sex = fields.get("sex")
    if (doc_type in (DocType.ID_CARD_FRONT, DocType.ID_CARD_TEMPORARY) and sex is not None
            and sex.value is None and isinstance(engine, StagedRecognizer)):
        # 男 or 女 alone is a small word: the detector may have found no box around it.
        cell = sex_from_cell(prepared.image, lines, engine.read_crops)
        if cell is not None:
            fields.update(calibrate_fields({"sex": cell}, doc_type))
    quality = assess_quality(image, prepared)
    if prepared.card_quad is None:
        ph, pw = prepared.image.shape[:2]
        cut = edge_text_cut([ln.polygon for ln in lines], pw, ph)
        quality.metrics["border_cut_off"] = QualityMetric(
            value=float(cut), threshold=1.0, verdict="warn" if cut else "ok")
    report, portrait = assess_risk(image, prepared, doc_type, lines=lines) if risk else (None, None)
    return PageReading(
        page=page,
        doc_type=doc_type,
        type_scores={k: round(v, 3) for k, v in scores.items()},
        fields={name: _map_field(f, prepared) for name, f in fields.items()},
        quality=quality,
        lines=[
            OcrLine(text=ln.text, confidence=round(ln.confidence, 4),
                    polygon=prepared.map_polygon(ln.polygon), page=page)
            for ln in lines
        ],
        ocr_passes=passes,
        seconds=round(time.perf_counter() - start, 4),
        risk=report,
        portrait_jpeg=portrait.jpeg if portrait is not None else None,
    )


_ANCHOR_SIDES = {DocType.ID_CARD_FRONT: "front", DocType.ID_CARD_BACK: "back"}


def _place_card(engine: StagedRecognizer, image: np.ndarray, prepared: Prepared,
                lines: list[OcrLine], doc_type: DocType):
    """A card read without its outline, flattened where its printed lines put it
    (:func:`ocr.cells.card_from_anchors`) and read again: (the reading, passes), or None
    when no anchor places it, it fills the page upright already (a scan), most of it
    would lie outside the photo, or the flattened card does not read as the same side."""
    height = round(CARD_WIDTH / ID_CARD_ASPECT)
    to_card = card_from_anchors(lines, _ANCHOR_SIDES[doc_type], CARD_WIDTH, height)
    if to_card is None:
        return None
    forward = to_card @ np.linalg.inv(prepared.to_original)  # photo -> card
    # judged in the photo's pixels: the page read may be a part of it, enlarged
    scale = float(np.sqrt(abs(np.linalg.det(forward[:2, :2]))))
    turn = float(np.degrees(np.arctan2(forward[1, 0], forward[0, 0])))
    ih, iw = image.shape[:2]
    if CARD_WIDTH / scale >= 0.75 * max(iw, ih) and abs(turn) <= 3.0:
        return None  # a card that fills the page upright (a scan): nothing to flatten
    back = np.linalg.inv(forward)
    corners = np.float64([[0, 0], [CARD_WIDTH - 1, 0], [CARD_WIDTH - 1, height - 1],
                          [0, height - 1]])
    quad = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), back).reshape(-1, 2)
    inside = cv2.intersectConvexConvex(
        np.float32(quad), np.float32([[0, 0], [iw, 0], [iw, ih], [0, ih]]))[0]
    if inside < 0.85 * cv2.contourArea(np.float32(quad)):
        return None
    card = cv2.warpPerspective(image, forward, (CARD_WIDTH, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    placed = Prepared(image=card, to_original=back, card_quad=order_quad(quad),
                      notes=[*prepared.notes, "card placed by its printed lines"])
    again, passes = _read_staged(engine, placed)
    if again[2] is not doc_type:
        return None
    return again, passes


_CARD_ROWS = {DocType.ID_CARD_FRONT: FRONT_ROWS, DocType.ID_CARD_BACK: BACK_ROWS}
#: The fields of a card printed from a closed list, and the list.
_CLOSED_LISTS = {DocType.ID_CARD_FRONT: {"sex": ["男", "女"],
                                         "ethnicity": sorted(ETHNIC_GROUPS)}}
#: What is known of a closed list's words before the card is looked at (男 and 女 are
#: as likely as each other).
_CLOSED_PRIORS = {"ethnicity": ethnic_log_prior}


def _read_empty_rows(engine: StagedRecognizer, prepared: Prepared, doc_type: DocType,
                     found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A card's fields not found, read from the rows where the card prints them when
    the detector found no text there (small, blurred words: 男 and 汉 alone on a row):
    the fields found before are kept; those found now say how. Returns the fields and
    the lines with the rows' readings added."""
    rows = _CARD_ROWS[doc_type]
    empty = {name for name in FIELDS[doc_type]
             if found.get(name) is None or found[name].value is None}
    closed = _CLOSED_LISTS.get(doc_type, {})
    wanted = missing_rows(rows, empty)
    if not wanted and all(found.get(n) is not None and found[n].value in words
                          for n, words in closed.items()) and (
            doc_type is not DocType.ID_CARD_BACK
            or (_period_ok(found) and _authority_ok(found))):
        return found, lines
    def read(crops: list[np.ndarray]) -> list[tuple]:
        return _read(engine, crops)

    more = card_row_lines(prepared.image, lines, rows, wanted, read, engine.rec_score_thresh)
    out = dict(found)
    if len(more) > len(lines):
        again = extract(doc_type, more)
        for name in empty:
            field = again.get(name)
            if field is not None and field.value is not None:
                out[name] = field.model_copy(
                    update={"corrections": [*field.corrections, ROW_NOTE]})
    score = getattr(engine, "score_texts", None)
    if score is not None:
        # A word of a closed list the recogniser cannot spell out of the blur may still
        # be the one of the list its output makes far likelier than the others.
        # A reading outside the list (集汉, 渡) is tried again the same way.
        for name, words in closed.items():
            if out.get(name) is None or out[name].value not in words:
                field = closed_from_row(prepared.image, more, rows, name, words, score,
                                        _CLOSED_PRIORS.get(name))
                if field is not None:
                    out[name] = field
    sex = out.get("sex")
    encoded_sex = _encoded_sex(out.get("id_number"))
    if (doc_type is DocType.ID_CARD_FRONT and score is not None and encoded_sex is not None
            and (sex is None or sex.value not in closed["sex"])):
        # Still no sex: the number says which it is; the pixels must not say otherwise.
        field = sex_by_number(prepared.image, more, rows, encoded_sex, score)
        if field is not None:
            out["sex"] = field
    if doc_type is DocType.ID_CARD_FRONT and score is not None:
        encoded = _encoded_birth(out.get("id_number"))
        birth = out.get("birth_date")
        if encoded is not None and (birth is None or birth.value != encoded):
            field = birth_from_row(prepared.image, more, rows, encoded,
                                   birth.value if birth is not None else None, read, score)
            if field is not None:
                out["birth_date"] = field
    if doc_type is DocType.ID_CARD_BACK and score is not None and not _period_ok(out):
        raws = [f.raw for n in ("valid_from", "valid_until")
                if (f := out.get(n)) is not None and f.raw]
        chosen = validity_from_row(prepared.image, more, rows, read, score, raws)
        parts = dict(zip(("valid_from", "valid_until"), chosen or (None, None), strict=True))
        whole = None not in parts.values()
        for name, field in parts.items():
            # a part decided alone fills a part not read; it overrules no reading
            if field is not None and (whole or out.get(name) is None or out[name].value is None):
                out[name] = field
    if doc_type is DocType.ID_CARD_BACK and score is not None and not _authority_ok(out):
        # Not the name of a real bureau: the real names its row makes likeliest.
        authority = out.get("issuing_authority")
        raws = [authority.raw] if authority is not None and authority.raw else []
        field = authority_from_row(prepared.image, more, rows, raws,
                                   gb11643.authority_names(), read, score)
        if field is not None:
            out["issuing_authority"] = field
    return out, more


def _values_around_labels(engine: StagedRecognizer, prepared: Prepared,
                          found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A form's fields with a label on the page and no value, looked for again around
    their labels (:mod:`ocr.around_labels`): the fields found before are kept; those
    found now say how. Returns the fields and the lines with the new ones added."""
    empty = [name for name in FIELDS[DocType.CLAIM_FORM]
             if found.get(name) is None or found[name].value is None]
    if not empty:
        return found, lines
    boxes = label_boxes(lines)
    labels = [box for name in empty for box in boxes.get(name, ())]
    if not labels:
        return found, lines
    more = lines_around(prepared.image, lines, labels, engine.detect, engine.crop,
                        lambda crops: _read(engine, crops), engine.rec_score_thresh)
    if not more:
        return found, lines
    lines = [*lines, *more]
    again = extract(DocType.CLAIM_FORM, lines)
    out = dict(found)
    for name in empty:
        field = again.get(name)
        if field is not None and field.value is not None:
            out[name] = field.model_copy(
                update={"corrections": [*field.corrections, AROUND_LABEL_NOTE]})
    return out, lines


def _authority_ok(fields: dict[str, ExtractedField]) -> bool:
    """Whether a card back's issuing authority was read as a real bureau's name
    (:func:`domain.gb11643.authority_known`)."""
    authority = fields.get("issuing_authority")
    return (authority is not None and authority.value is not None
            and gb11643.authority_known(authority.value))


def _address_region(engine: StagedRecognizer, prepared: Prepared,
                    found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A card front's address that does not begin with a real region (GB/T 2260), its
    region chosen among the real ones by the recogniser's likelihood on the address's
    own lines (:mod:`ocr.address`); the rest as read. Returns the fields and the lines,
    the address's lines as chosen."""
    address = found.get("address")
    score = getattr(engine, "score_texts", None)
    prefixes = gb11643.address_prefixes()
    if score is None or address is None or not address.value or address.value.startswith(prefixes):
        return found, lines
    used: list[int] = []
    for box in address.boxes:
        k = next((k for k, ln in enumerate(lines) if ln.polygon == box and k not in used), None)
        if k is not None:
            used.append(k)
    texts = [lines[k].text.replace(" ", "") for k in used]
    while len(used) > 1 and sum("\u4e00" <= ch <= "\u9fff" for ch in texts[0]) <= 2:
        used, texts = used[1:], texts[1:]  # a label in a box of its own
    if not used:
        return found, lines
    start = address_start(texts[0])
    crops = [engine.crop(prepared.image, np.asarray(lines[k].polygon, np.float32)) for k in used]
    chosen = choose_region([texts[0][start:], *texts[1:]], crops, prefixes, score,
                           lead=texts[0][:start])
    if chosen is None:
        return found, lines
    split, share = chosen
    new = list(lines)
    for n, (k, text) in enumerate(zip(used, split, strict=True)):
        new[k] = lines[k].model_copy(update={
            "text": (texts[0][:start] if n == 0 else "") + text,
            "alternatives": [], "char_probs": []})
    again = extract(DocType.ID_CARD_FRONT, new).get("address")
    if again is None or not again.value or not again.value.startswith(prefixes):
        return found, lines
    out = dict(found)
    out["address"] = again.model_copy(update={
        "raw": address.raw, "confidence": round(min(again.confidence, share), 4),
        "corrections": [*address.corrections, ADDRESS_NOTE]})
    return out, new


def _value_on_line(engine: StagedRecognizer, prepared: Prepared, field: ExtractedField,
                   lines: list[OcrLine]) -> tuple[np.ndarray, str, str] | None:
    """The crop of the one line a field's value was read from, and what the line holds
    before and after the value (a label, the next cell's text), for scoring readings of
    the value on it; None when the value is not one line's or not in its text."""
    if len(field.boxes) != 1 or not field.value:
        return None
    line = next((ln for ln in lines if ln.polygon == field.boxes[0]), None)
    text = line.text.replace(" ", "") if line is not None else ""
    at = text.find(field.value)
    if at < 0:
        return None
    crop = engine.crop(prepared.image, np.asarray(line.polygon, np.float32))
    return crop, text[:at], text[at + len(field.value):]


def _address_tail(engine: StagedRecognizer, prepared: Prepared,
                  found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A card front's address whose last characters wrapped alone onto the next row
    (号), where the detector found no line: that row read, and taken when it reads
    clearly as an address's end (:func:`ocr.address.address_tail`). Returns the fields
    and the lines with the row's reading added."""
    address = found.get("address")
    if address is None or not address.value:
        return found, lines
    box = tail_box(lines, [ln for ln in lines if ln.polygon in address.boxes])
    if box is None:
        return found, lines
    x0, y0, x1, y1 = box
    h, w = prepared.image.shape[:2]
    if y1 > h or y1 - y0 < 8:
        return found, lines
    reading = _read(engine, [np.ascontiguousarray(prepared.image[y0:y1, max(x0, 0):min(x1, w)])])[0]
    tail = address_tail(reading[0], float(reading[1]))
    if tail is None:
        return found, lines
    polygon = [(float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)),
               (float(x0), float(y1))]
    line = OcrLine(text=tail, confidence=round(float(reading[1]), 4), polygon=polygon)
    return {**found, "address": address.model_copy(update={
        "value": address.value + tail, "raw": address.raw or address.value,
        "confidence": round(min(address.confidence, float(reading[1])), 4),
        "boxes": [*address.boxes, polygon],
        "corrections": [*address.corrections, TAIL_NOTE]})}, [*lines, line]


def _number_on_line(engine: StagedRecognizer, prepared: Prepared,
                    found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A card front's ID number read with a digit dropped or misread, put right by the
    recogniser's likelihood of the valid numbers one character from it on its line
    (:func:`ocr.cells.number_from_line`); it goes to a person, as a number chosen by its
    check digit does."""
    score = getattr(engine, "score_texts", None)
    field = found.get("id_number")
    if score is None or field is None or not field.value or gb11643.is_valid(field.value):
        return found
    # its own line (the field's boxes may hold the label's too)
    box = next((ln.polygon for ln in lines if ln.polygon in field.boxes
                and field.value in ln.text.replace(" ", "")), None)
    on_line = (_value_on_line(engine, prepared, field.model_copy(update={"boxes": [box]}), lines)
               if box is not None else None)
    if on_line is None:
        return found
    chosen = number_from_line(field.value, *on_line, score)
    if chosen is None:
        return found
    number, share = chosen
    return {**found, "id_number": field.model_copy(update={
        "value": number, "raw": field.raw or field.value,
        "confidence": round(min(field.confidence, share, GUESSED_CONFIDENCE), 4),
        "corrections": [*field.corrections, number_note(field.value, number)]})}


def _names(engine: StagedRecognizer, prepared: Prepared, doc_type: DocType,
           found: dict[str, ExtractedField], lines: list[OcrLine]):
    """Each person's name read with doubt, its surname chosen among the known ones and
    then each character of its given name among the common ones, by the recogniser's
    likelihood on the name's line (:mod:`ocr.names`)."""
    score = getattr(engine, "score_texts", None)
    if score is None:
        return found
    out = dict(found)
    for name in FIELDS.get(doc_type, ()):
        field = found.get(name)
        if (field is None or not field.value or field_family(name) is not FieldFamily.NAME
                or field.confidence >= SURE_NAME or len(field.boxes) != 1):
            continue
        on_line = _value_on_line(engine, prepared, field, lines)
        if on_line is None:
            continue
        crop, lead, tail = on_line
        value, share, notes = field.value, 1.0, []
        chosen = choose_name(value, crop, sorted(surnames()), score, lead=lead, tail=tail)
        if chosen is not None:
            (value, share), notes = chosen, [SURNAME_NOTE]
        given = choose_given(value, len(surname_of(value) or value[:1]), crop, score,
                             common_given_chars(GIVEN_VOCABULARY), given_char_log_prior,
                             lead=lead, tail=tail)
        if given is not None:
            value, share, notes = given[0], min(share, given[1]), [*notes, GIVEN_NOTE]
        if notes:
            out[name] = field.model_copy(update={
                "value": value, "raw": field.raw or field.value,
                "confidence": round(min(field.confidence, share), 4),
                "corrections": [*field.corrections, *notes]})
    return out


#: A county of the value's city doubts the value when its likelihood on the value's line
#: is within this many nats of the reading's (e^-6: 0.25%): a branch or a hospital named
#: after its city names one of its counties next far more often than a near miss of one
#: (颖东 for 颍东 at 5.2 nats below, seed 724 photo 0042).
PLACE_MARGIN = 6.0


def _near_counties(engine: StagedRecognizer, prepared: Prepared,
                   found: dict[str, ExtractedField], lines: list[OcrLine]):
    """A bank's or a hospital's name whose text after its city is one character from a
    county of that city (:func:`ocr.lexicon.near_counties`), when the recogniser finds
    that county nearly as likely on the name's line: doubted, with a note (a person
    confirms it). The value is never changed."""
    score = getattr(engine, "score_texts", None)
    if score is None:
        return found
    out = dict(found)
    for name in ("bank_name", "hospital"):
        field = found.get(name)
        if field is None or not field.value:
            continue
        near = near_counties(field.value)
        on_line = _value_on_line(engine, prepared, field, lines) if near else None
        if on_line is None:
            continue
        crop, lead, tail = on_line
        ll = np.asarray(score([crop], [lead + v + tail for v in (field.value, *near)])[0],
                        dtype=np.float64)
        if not np.isfinite(ll[0]) or ll[1:].max() < ll[0] - PLACE_MARGIN:
            continue
        share = 1.0 / float(np.exp(ll[np.isfinite(ll)] - ll[0]).sum())
        out[name] = field.model_copy(update={
            "confidence": round(min(field.confidence, share), 4),
            "corrections": [*field.corrections, PLACE_NOTE]})
    return out


def _encoded_sex(number: ExtractedField | None) -> str | None:
    """男 or 女 as a number read whole and valid encodes it; None for a number not
    read, invalid, or made valid by its check digit alone."""
    if _encoded_birth(number) is None:
        return None
    return gb11643.get_sex(number.value)


def _encoded_birth(number: ExtractedField | None) -> str | None:
    """The birth date (ISO) a number read whole and valid encodes; None for a number
    not read, invalid, or made valid by its check digit alone."""
    if number is None or not number.value or not gb11643.is_valid(number.value):
        return None
    if guessed_by_check_digit(number.corrections):
        return None
    return gb11643.get_birth_date(number.value).isoformat()


def _period_ok(fields: dict[str, ExtractedField]) -> bool:
    """Whether a card back's validity reads as a period a card can have
    (:mod:`domain.validity`): 长期, or an end 5, 10 or 20 years after its start."""
    start, end = fields.get("valid_from"), fields.get("valid_until")
    if start is None or end is None or start.value is None or end.value is None:
        return False
    if end.value == LIFETIME:
        return True
    try:
        first, last = date.fromisoformat(start.value), date.fromisoformat(end.value)
    except ValueError:
        return False
    return period_years(first, last) is not None


def _read_whole(engine: Recognizer, prepared: Prepared):
    """Orientation by whole OCR passes (engines that only offer `recognize`)."""
    lines = engine.recognize(prepared.image)
    passes = 1
    if text_orientation([ln.polygon for ln in lines]) == "vertical":
        prepared = prepared.rotated(1)
        lines = engine.recognize(prepared.image)
        passes += 1
    doc_type, scores = classify_text(lines)
    best = (prepared, lines, doc_type, scores)
    if not _confident(doc_type, scores):
        flipped = prepared.rotated(2)
        f_lines = engine.recognize(flipped.image)
        passes += 1
        f_type, f_scores = classify_text(f_lines)
        if _attempt_key(f_type, f_scores, f_lines) > _attempt_key(doc_type, scores, lines):
            best = (flipped, f_lines, f_type, f_scores)
    return best, passes


def _lines_in(target: Prepared, source: Prepared, polys, texts, threshold: float):
    """OCR lines with polygons moved from `source`'s pixels to `target`'s. ``texts``:
    (text, score) or (text, score, alternatives[, char_probs]) per polygon."""
    to_target = np.linalg.inv(target.to_original) @ source.to_original
    lines = []
    for poly, reading in zip(polys, texts, strict=True):
        text, score = reading[0], reading[1]
        if not text.strip() or score < threshold:
            continue
        pts = cv2.perspectiveTransform(np.asarray(poly, np.float64).reshape(-1, 1, 2),
                                       to_target).reshape(-1, 2)
        pts = order_quad(pts)
        lines.append(OcrLine(text=text, confidence=score,
                             polygon=[(float(x), float(y)) for x, y in pts],
                             alternatives=reading[2] if len(reading) > 2 else [],
                             char_probs=reading[3] if len(reading) > 3 else []))
    return lines


def _read(engine: StagedRecognizer, crops: list[np.ndarray]) -> list[tuple]:
    """(text, score[, alternatives, char_probs]) per crop: with the alternatives and the
    characters' probabilities when the engine offers them (``read_lines``)."""
    read_lines = getattr(engine, "read_lines", None)
    if read_lines is None:
        return engine.read_crops(crops)
    return [(r.text, r.score, r.alternatives, r.char_probs) for r in read_lines(crops)]


def _read_staged(engine: StagedRecognizer, prepared: Prepared):
    """Detect once; decide the orientation by re-reading the same crops turned over.

    The detector finds lines whichever way up the page is; only recognition needs the
    text upright. Tall crops are turned a quarter (as if the page were turned back),
    and when the text does not look like a known document the crops are read again
    upside down: a second recognition pass, never a second detection.
    """
    polys = engine.detect(prepared.image)
    crops = [engine.crop(prepared.image, p) for p in polys]
    quarter = text_orientation([p.tolist() for p in polys]) == "vertical"
    base = prepared.rotated(3) if quarter else prepared
    texts = _read(engine, crops)
    lines = _lines_in(base, prepared, polys, texts, engine.rec_score_thresh)
    doc_type, scores = classify_text(lines)
    best = (base, lines, doc_type, scores)
    passes = 1
    if not _confident(doc_type, scores):
        flipped = base.rotated(2)
        f_texts = _read(engine, [np.ascontiguousarray(np.rot90(c, 2)) for c in crops])
        f_lines = _lines_in(flipped, prepared, polys, f_texts, engine.rec_score_thresh)
        passes += 1
        f_type, f_scores = classify_text(f_lines)
        if _attempt_key(f_type, f_scores, f_lines) > _attempt_key(doc_type, scores, lines):
            best = (flipped, f_lines, f_type, f_scores)
    return best, passes


def _map_field(field: ExtractedField, prepared: Prepared) -> ExtractedField:
    return field.model_copy(update={"boxes": [prepared.map_polygon(b) for b in field.boxes]})


def read_document(data: bytes, engine: Recognizer,
                  limits: Limits | None = None) -> list[PageReading]:
    """Read every page of a file. Raises `DecodeError` for a file that is not a document."""
    pages: list[DecodedPage] = decode(data, limits or Limits())
    return [read_page(p.image, engine, page=p.index) for p in pages]
