"""Field confidence as a probability: the recogniser's score mapped to P(value is right).

The recogniser's line score (the minimum over a field's lines) says how sure it was of
the characters; it does not see a value taken from the wrong place, and on unseen
forms a field scored 0.995 is wrong several times in a hundred. A calibration table
(package data ``ocr/calibration.json``, fitted by ``bench/fit_calibration.py`` on
generated sets with ground truth) holds monotone piecewise-linear maps from that score
to the share of values that were right (isotonic fits, thinned to a few dozen
breakpoints): one per field family (``domain.fields.FAMILIES``) of each document type
(``claim_form/name``: a name found by its label on a free-form page goes wrong more
often than one on an ID card), looked up by the type the page was read as, then the
field's home type, and one per family over all types as the fallback. A
field whose family the table lacks keeps its score.

A value read another way than by the recogniser (a tick found in a check box's
pixels) has its own curves, keyed with its source (``claim_form/choice@pixels``), on
its own score (how clearly the ticked box stands out); without such a curve it is
capped at :data:`UNSEEN_SOURCE_CAP`, below every review threshold.

>>> curve = Curve(x=(0.5, 0.9, 1.0), y=(0.2, 0.6, 0.99))
>>> round(curve(0.95), 3), curve(0.1), curve(1.0)
(0.795, 0.2, 0.99)
>>> curve_keys("insured_name")
('claim_form/name', 'name')
>>> curve_keys("bank_name", "bank_card")
('bank_card/text', 'claim_form/text', 'text')
>>> curve_keys("relationship", "claim_form", "pixels")
('claim_form/choice@pixels', 'choice@pixels')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from domain.fields import FIELDS, field_family
from domain.models import DocType, ExtractedField

from .address import ADDRESS_NOTE as _REGION_BY_LIKELIHOOD
from .cells import AUTHORITY_NOTE as _AUTHORITY_BY_LIKELIHOOD
from .cells import BIRTH_NOTE as _BIRTH_BY_NUMBER
from .cells import CLOSED_NOTE as _CLOSED_LIST
from .cells import PRIOR_NOTE as _CLOSED_LIST_AND_PRIOR
from .cells import ROW_NOTE as _ROW_BAND
from .cells import SEX_BY_NUMBER_NOTE as _SEX_BY_NUMBER
from .cells import VALIDITY_NOTE as _VALIDITY_PERIOD
from .checkbox import NOTE as _TICK_FROM_PIXELS
from .lexicon import PLACE_NOTE as _NEAR_COUNTY
from .names import GIVEN_NOTE as _GIVEN_NAME_BY_LIKELIHOOD
from .names import SURNAME_NOTE as _SURNAME_BY_LIKELIHOOD

__all__ = ["Curve", "calibrate", "calibrate_fields", "curve_for", "curve_keys",
           "reading_source", "table", "use_calibration"]

#: How a value read without the recogniser says so (its note), and its source's name.
_SOURCES = {_TICK_FROM_PIXELS: "pixels", _ROW_BAND: "row", _CLOSED_LIST: "closed",
            _VALIDITY_PERIOD: "closed", _BIRTH_BY_NUMBER: "closed",
            _AUTHORITY_BY_LIKELIHOOD: "closed", _REGION_BY_LIKELIHOOD: "closed",
            _CLOSED_LIST_AND_PRIOR: "prior", _SURNAME_BY_LIKELIHOOD: "closed",
            _GIVEN_NAME_BY_LIKELIHOOD: "prior", _SEX_BY_NUMBER: "prior",
            _NEAR_COUNTY: "place"}
#: The confidence at most of a value from a source the table has no curve for: a
#: person sees it (below every review threshold).
UNSEEN_SOURCE_CAP = 0.8

_DOC_TYPE = {name: doc_type for doc_type, names in FIELDS.items() for name in names}


@dataclass(frozen=True)
class Curve:
    """A monotone piecewise-linear map (breakpoints ``x`` ascending, ``y`` non-decreasing,
    in [0, 1]); flat beyond its ends."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or not self.x:
            raise ValueError("a curve needs as many y as x breakpoints, at least one")
        if any(b < a for a, b in pairwise(self.x)):
            raise ValueError("curve breakpoints x must ascend")
        if any(b < a for a, b in pairwise(self.y)):
            raise ValueError("curve values y must not decrease (a monotone map)")
        if self.y[0] < 0.0 or self.y[-1] > 1.0:
            raise ValueError("curve values y must lie in [0, 1]")

    def __call__(self, raw: float) -> float:
        return float(np.interp(raw, self.x, self.y))


@dataclass(frozen=True)
class Table:
    curves: dict[str, Curve]
    provenance: dict[str, Any]


def _parse(data: dict[str, Any]) -> Table:
    curves = {key: Curve(x=tuple(map(float, c["x"])), y=tuple(map(float, c["y"])))
              for key, c in data.get("curves", {}).items()}
    return Table(curves=curves, provenance=data.get("provenance", {}))


@lru_cache(maxsize=4)
def _load(path: str | None) -> Table:
    if path:
        text = Path(path).read_text("utf-8")
    else:
        text = resources.files("ocr").joinpath("calibration.json").read_text("utf-8")
    return _parse(json.loads(text))


_table_file: str | None = None


def use_calibration(path: str | Path | None) -> None:
    """Calibrate with the table in this JSON file (None: the bundled
    ``ocr/calibration.json``)."""
    global _table_file
    _table_file = str(path) if path else None


def table() -> Table:
    """The calibration table in use (read once per file)."""
    return _load(_table_file)


def reading_source(corrections: list[str] | None) -> str | None:
    """The source of a value read another way than by the recogniser (``pixels``: a
    tick seen in a check box), from its notes; None for a recogniser's reading."""
    return next((_SOURCES[c] for c in corrections or () if c in _SOURCES), None)


def curve_keys(field: str, doc_type: DocType | str | None = None,
               source: str | None = None) -> tuple[str, ...]:
    """The table keys a field's curve is looked up by, most specific first: the family
    curve of the document type it was read on (``doc_type``), then of its home type (the
    last type that names it), then its family's; all with ``@source`` for a value read
    another way than by the recogniser."""
    family = field_family(field)
    if family is None:
        return ()
    home = _DOC_TYPE.get(field)
    types = [DocType(doc_type).value] if doc_type else []
    if home is not None and home.value not in types:
        types.append(home.value)
    tail = f"@{source}" if source else ""
    return tuple(f"{t}/{family.value}{tail}" for t in types) + (f"{family.value}{tail}",)


def curve_for(field: str, doc_type: DocType | str | None = None,
              source: str | None = None) -> Curve | None:
    """The curve a field is calibrated with; None: no curve (its score is kept)."""
    curves = table().curves
    return next((curves[k] for k in curve_keys(field, doc_type, source) if k in curves), None)


def calibrate(field: str, raw: float, doc_type: DocType | str | None = None) -> float:
    """P(the value is right) for a field read with score ``raw`` on a ``doc_type`` page
    (identity for a field whose family the table does not hold)."""
    curve = curve_for(field, doc_type)
    return float(raw) if curve is None else curve(raw)


def calibrate_fields(fields: dict[str, ExtractedField],
                     doc_type: DocType | str | None = None) -> dict[str, ExtractedField]:
    """Every found field with its confidence calibrated, the score it came from kept in
    ``ocr_confidence`` (a field already calibrated is left as it is); a field not found
    keeps its confidence (0)."""
    out = {}
    for name, f in fields.items():
        if f.value is None or f.ocr_confidence is not None:
            out[name] = f
            continue
        source = reading_source(f.corrections)
        curve = curve_for(name, doc_type, source)
        p = (f.confidence if source is None else min(f.confidence, UNSEEN_SOURCE_CAP)
             ) if curve is None else curve(f.confidence)
        out[name] = f.model_copy(update={"ocr_confidence": f.confidence,
                                         "confidence": round(p, 6)})
    return out
