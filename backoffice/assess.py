"""Assessment: the rules' verdicts on a reading and the route they give. One function,
:func:`assess`, that processing, the dry run, ``backoffice extract`` and the review all
call, so that each says the same of the same page.

Straight through when the machine is sure, to a person otherwise; rejected when the
page is no document at all. Every reason is safe to show (it names fields and rules,
never values).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from backoffice.settings import Settings
from domain.fields import ID_NUMBER_FIELDS, OPTIONAL_FIELDS
from domain.models import (
    Assessment,
    CheckResult,
    DocType,
    ExtractedField,
    QualityReport,
    RiskReport,
    RouteDecision,
    RouteReason,
    Severity,
)
from ocr.decoders import decided_by_constraint
from ocr.pipeline import PageReading
from ocr.text import guessed_by_check_digit

NOT_A_DOCUMENT = "not a recognised document: no ID-card or claim-form text was found"
# A passed rule that ties a field to independent evidence (the number's own check
# digit, the amount written twice) vouches for that field even when the OCR engine
# was unsure of it; the confidence threshold then does not send it to a person.
CORROBORATED_BY: dict[str, tuple[str, ...]] = {
    "id_card.birth_date_matches": ("birth_date",),
    "id_card.sex_matches": ("sex",),
    "id_card.ethnicity_known": ("ethnicity",),
    "claim.amount_in_words_matches": ("claim_amount", "claim_amount_in_words"),
    "invoice.amount_words_match": ("total_amount", "total_amount_in_words"),
    "invoice.items_add_up": ("items", "total_amount"),
    "bank_card.luhn": ("card_number",),
    # Luhn catches every single misread digit (a dropped one changes the length too).
    "claim.account_number_luhn": ("account_number",),
}


def validate_fields(doc_type: DocType, values: Mapping[str, str | None],
                    today: date | None = None, lookup: Any = None) -> list[CheckResult]:
    """Run the registered rules for a document type on plain field values."""
    from validators.registry import RuleContext, run_rules

    ctx = RuleContext(today=today or date.today(), lookup=lookup)
    return run_rules(doc_type, dict(values), ctx=ctx)


def system_lookup(settings: Settings):
    """The read-only lookup of the downstream systems when both are configured
    (``core_url`` and ``claims_url``); None makes the cross-system rules report
    themselves skipped."""
    if not (settings.core_url and settings.claims_url):
        return None
    from backoffice.lookup_rest import RestLookup

    return RestLookup(settings.core_url, settings.claims_url)


#: A passed cross-system rule vouches for the values it found on record (its details'
#: ``on_record``): the field of the page each stands for.
ON_RECORD: dict[str, dict[str, str]] = {
    "crossref.customer_identity_agrees": {"name": "name", "birth_date": "birth_date"},
    "crossref.insured_identity_agrees": {"name": "insured_name"},
}
#: Names that are the same person's as a vouched name on the same form vouch for
#: themselves: a misread that lands on another field's value, letter for letter, does
#: not happen by chance.
SAME_PERSON: dict[str, tuple[str, ...]] = {
    "claimant_name": ("insured_name",),
    "account_name": ("claimant_name", "insured_name"),
}


def on_record_vouched(checks: list[CheckResult], fields: Mapping[str, ExtractedField]
                      ) -> set[str]:
    """The fields the systems of record vouch for: those a passed cross-system rule found
    on record and agreeing, and the names on the form equal to one of them
    (:data:`SAME_PERSON`: the claimant is the insured, the account is the claimant's)."""
    from validators.fields import same_name

    out = {ON_RECORD[c.rule][k] for c in checks if c.passed and c.rule in ON_RECORD
           for k in c.details.get("on_record", ()) if k in ON_RECORD[c.rule]}
    for name, others in SAME_PERSON.items():  # in order: the claimant before the account
        value = fields[name].value if name in fields else None
        if any(o in out and o in fields and same_name(value, fields[o].value) for o in others):
            out.add(name)
    return out


def _one_line(a: ExtractedField, b: ExtractedField) -> bool:
    """Whether two fields were read, at least in part, from the same line."""
    return any(box in b.boxes for box in a.boxes)


def agreeing_confidence(fields: Mapping[str, ExtractedField]) -> dict[str, float]:
    """Each name's confidence, raised to that of a surer name of the same person
    (:data:`SAME_PERSON`, either way) read alike from another line of the page.

    Two readings of two lines that give the same name letter for letter are the same
    name read twice: the doubted one is right when the sure one is (a misread that lands
    on another field's value does not happen by chance). A name read once for two
    fields (the same line) proves nothing, nor do two doubted readings that agree (a
    rare character is misread the same way twice: 仝 as 全)."""
    from validators.fields import same_name

    out = {name: f.confidence for name, f in fields.items()}
    for name, others in SAME_PERSON.items():
        for other in others:
            a, b = fields.get(name), fields.get(other)
            if (a is None or b is None or not a.value or not same_name(a.value, b.value)
                    or not a.boxes or not b.boxes or _one_line(a, b)):
                continue
            # Each from the other's own reading: not from a third line through it (the
            # claimant's line raising the insured, then the insured the account read
            # from the claimant's line).
            out[name] = max(out[name], b.confidence)
            out[other] = max(out[other], a.confidence)
    return out


def one_reading_for_two(fields: Mapping[str, ExtractedField]) -> list[tuple[str, str]]:
    """Pairs of fields given the same value from the same line: one line's reading taken
    for two fields, so one of them has another's value (a two-column form whose right
    column's 申请日期 value sits on the row of the left column's 事故发生日期 label:
    both dates read 2025-05-22, seed 876)."""
    found = [(name, f) for name, f in fields.items() if f.value and f.boxes]
    return [(a, b) for i, (a, fa) in enumerate(found) for b, fb in found[i + 1:]
            if fa.value == fb.value and _one_line(fa, fb)]


def numbers_vouched(checks: list[CheckResult]) -> set[str]:
    """The identity numbers that independent evidence vouches for: a card's number whose
    check digit is right and whose birth date and sex agree with the card's own printed
    birth date and sex (three readings that agree); a claim form's 18-digit number whose
    check digit is right (ISO 7064 MOD 11-2 catches every single misread character and
    every swap of two). A 15-digit number has no check digit: nothing vouches for it. A
    number whose digit only the check digit chose is never vouched for (see
    :func:`route`)."""
    passed = {c.rule for c in checks if c.passed}
    out = set()
    if {"id_number.checksum", "id_card.birth_date_matches", "id_card.sex_matches"} <= passed:
        out.add("id_number")
    if any(c.passed and c.rule == "claim.insured_id_number_valid"
           and c.details.get("check") == "checksum" for c in checks):
        out.add("insured_id_number")
    return out


def risk_reasons(risk: RiskReport | None, actions: Mapping[str, str] | None
                 ) -> tuple[list[RouteReason], list[RouteReason]]:
    """The reasons of the flagged risk signals: (those that reject, those for review), by
    each signal's action (``review`` when not set; ``ignore``: none)."""
    reject: list[RouteReason] = []
    review: list[RouteReason] = []
    if risk is None:
        return reject, review
    for name, signal in risk.signals.items():
        if not signal.flagged:
            continue
        action = (actions or {}).get(name, "review")
        if action == "ignore":
            continue
        reason = RouteReason(text=f"risk: {name} (score {signal.score:.2f}): {signal.reason}",
                             rule=f"risk.{name}")
        (reject if action == "reject" else review).append(reason)
    return reject, review


def route(doc_type: DocType, fields: Mapping[str, ExtractedField], checks: list[CheckResult],
          quality: QualityReport | None, *, min_confidence: float,
          min_id_confidence: float, target_error: float | None = None,
          risk: RiskReport | None = None,
          risk_actions: Mapping[str, str] | None = None) -> RouteDecision:
    """Decide where a read document goes, and say why. A field below its threshold goes
    to a person: ``min_id_confidence`` for ID numbers, ``min_confidence`` for the others;
    with ``target_error``, the page's expected field error against it
    (:func:`expected_error_reasons`). A flagged risk signal sends the document to a
    person or rejects it, by its action in ``risk_actions``."""
    rejecting, reasons = risk_reasons(risk, risk_actions)
    if doc_type is DocType.UNKNOWN:
        # Rejected whatever its signals say; a copied or re-photographed card the reading
        # could not make out still says so (ocr/risk.py judges such a card by its outline).
        return RouteDecision(status="rejected",
                             reasons=[RouteReason(text=NOT_A_DOCUMENT), *rejecting, *reasons])
    # A value a decoder changed to meet a constraint passes that constraint's rule
    # because of the change: the rule vouches for nothing then.
    vouched = ({field for check in checks if check.passed
                for field in CORROBORATED_BY.get(check.rule, ())} | numbers_vouched(checks)
               | on_record_vouched(checks, fields)) - {
        name for name, f in fields.items()
        if decided_by_constraint(f.corrections) or guessed_by_check_digit(f.corrections)}
    optional = OPTIONAL_FIELDS.get(doc_type, frozenset())
    confidence = agreeing_confidence(fields)
    for name, f in fields.items():
        if f.value is None:
            if name not in optional:
                reasons.append(RouteReason(text=f"{name}: not found", field=name))
            continue
        if name in vouched or target_error is not None:
            continue  # with a target, the page's fields are judged together (below)
        threshold = _threshold(name, min_confidence, min_id_confidence, target_error)
        sure = confidence[name]
        if sure < threshold:
            # As many decimals as the threshold needs (0.85, 0.995), and as the value
            # needs to be seen below it (0.849 below 0.85).
            t = max(2, len(f"{threshold:.6f}".rstrip("0").split(".")[1]))
            c = t
            while c < 6 and round(sure, c) >= round(threshold, t):
                c += 1
            reasons.append(RouteReason(
                text=f"{name}: confidence {sure:.{c}f} below {threshold:.{t}f}",
                field=name))
    if target_error is not None:
        reasons += expected_error_reasons(fields, vouched, target_error, confidence)
    for a, b in one_reading_for_two(fields):
        reasons.append(RouteReason(text=f"{a}, {b}: one line's reading taken for both",
                                   field=b))
    for check in checks:
        if not check.passed and check.severity >= Severity.WARNING:
            reasons.append(RouteReason(
                text=f"{check.rule} ({check.severity.value}): {check.message}", rule=check.rule))
    if quality is not None:
        for metric_name, metric in quality.metrics.items():
            if metric.verdict == "fail":
                reasons.append(RouteReason(text=f"image quality: {metric_name} ({metric.value})"))
    if rejecting:
        return RouteDecision(status="rejected", reasons=rejecting + reasons)
    return RouteDecision(status="in_review" if reasons else "approved", reasons=reasons)


#: With a target error, no single field goes straight through below 1 - this x target
#: (0.95 for a target of 0.5%), however sure the rest of the page is.
FIELD_FLOOR_FACTOR = 10


def expected_error_reasons(fields: Mapping[str, ExtractedField], vouched: set[str],
                           target_error: float,
                           confidence: Mapping[str, float] | None = None) -> list[RouteReason]:
    """Why a page misses the target error, or nothing when it meets it.

    Confidences are calibrated probabilities of being right, so the expected share of
    wrong fields on a page is the mean of (1 - confidence) over its fields (a field a
    passed rule vouches for counts as right). A page goes straight through when that
    mean is at most ``target_error``, and no field is below ``1 - FIELD_FLOOR_FACTOR x
    target_error``: the fields that go through are then wrong at most ``target_error``
    of the time, as far as the calibration holds. The reasons name the fields that
    weigh most. ``confidence``: the fields' confidences when not their own
    (:func:`agreeing_confidence`).
    """
    confidence = confidence or {}
    risks = {name: 0.0 if name in vouched else 1.0 - confidence.get(name, f.confidence)
             for name, f in fields.items() if f.value is not None}
    if not risks:
        return []
    expected = sum(risks.values()) / len(risks)
    floor = FIELD_FLOOR_FACTOR * target_error
    if expected <= target_error and max(risks.values()) <= floor:
        return []
    heavy = sorted((r, n) for n, r in risks.items() if r > target_error)
    reasons = []
    for risk, name in reversed(heavy):
        why = (f"below the floor {1 - floor:.4g}" if risk > floor else
               f"expected field error on the page {expected:.2%}, target {target_error:.2%}")
        reasons.append(RouteReason(
            text=f"{name}: confidence {1 - risk:.4f} ({why})", field=name))
    return reasons


def _threshold(name: str, min_confidence: float, min_id_confidence: float,
               target_error: float | None) -> float:
    if target_error is not None:
        return 1.0 - target_error
    return min_id_confidence if name in ID_NUMBER_FIELDS else min_confidence


def field_threshold(settings: Settings, name: str) -> float:
    """The confidence below which the settings send this field to a person."""
    return _threshold(name, settings.review_min_field_confidence,
                      settings.review_min_id_number_confidence, settings.review_target_error)


def route_with(settings: Settings, doc_type: DocType, fields: Mapping[str, ExtractedField],
               checks: list[CheckResult], quality: QualityReport | None,
               risk: RiskReport | None = None) -> RouteDecision:
    """:func:`route` with the thresholds and risk actions of the settings."""
    return route(doc_type, fields, checks, quality,
                 min_confidence=settings.review_min_field_confidence,
                 min_id_confidence=settings.review_min_id_number_confidence,
                 target_error=settings.review_target_error,
                 risk=risk, risk_actions=settings.risk_actions)


def assess(reading: PageReading, settings: Settings, *, today: date | None = None,
           lookup: Any = None) -> Assessment:
    """The checks of a read page and its route: the fields, the rules, the image quality
    and the risk signals."""
    values = {name: f.value for name, f in reading.fields.items()}
    checks = validate_fields(reading.doc_type, values, today=today, lookup=lookup)
    decision = route_with(settings, reading.doc_type, reading.fields, checks, reading.quality,
                          reading.risk)
    return Assessment(checks=checks, decision=decision)
