"""Rules on a claim case: the claim form against the documents that come with it.

A case (``DocType.CLAIM_CASE``) is a claim form with the insured's ID card (front and
back), the medical invoices and the bank card the money goes to. Its rules see one flat
mapping, each document's fields under its role (the caller, ``backoffice.cases``, builds
it from the store):

- ``form.<field>``: the claim form's fields (``form.insured_name``, ``form.account_number`` …);
- ``id.<field>``: the ID card, front and back joined (``id.name``, ``id.id_number``,
  ``id.birth_date``, ``id.valid_from``, ``id.valid_until`` …);
- ``card.<field>``: the bank card (``card.card_number``, ``card.card_holder``);
- ``invoice.count`` and ``invoice.<n>.<field>`` for n = 1 … count (``invoice.1.patient_name``,
  ``invoice.1.total_amount`` …), and ``invoice.<n>.used_in``: how many other cases in the
  store hold an invoice with the same code and number (set by the caller);
- ``form.same_claim_in``: how many other cases in the store claim for the same policy and
  accident date;
- ``case.documents``: the document types present, comma-separated (repeats counted).

Messages name roles, fields and figures, never personal values. Like every rule, these
never raise on bad data; a check that could not be made (no document, no lookup) says
so with ``skipped``, and a case with a skipped check does not go straight through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation

from domain import gb11643
from domain.models import CheckResult, DocType, Severity
from validators.fields import parse_date, same_name, text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules import id_card
from validators.rules._samples import BACK, CLAIM, FRONT, LOOKUP, STANDARD_ID_15

CASE = DocType.CLAIM_CASE
Fields = Mapping[str, str | None]

#: The documents a claim case needs, with the words the reasons use.
REQUIRED_DOCUMENTS: dict[str, str] = {
    DocType.CLAIM_FORM.value: "claim form",
    DocType.ID_CARD_FRONT.value: "ID card front",
    DocType.ID_CARD_BACK.value: "ID card back",
    DocType.MEDICAL_INVOICE.value: "medical invoice",
    DocType.BANK_CARD.value: "bank card",
}
#: A case's kind (``case.kind``): a claim (the default), or an identity, an ID card's front
#: and back paired in a batch; an identity needs only its two sides and is checked only by
#: :data:`IDENTITY_RULES` (the other case rules are about a claim).
IDENTITY = "identity"
IDENTITY_DOCUMENTS = (DocType.ID_CARD_FRONT.value, DocType.ID_CARD_BACK.value)
IDENTITY_RULES = frozenset({"case.documents_complete", "case.id_card_validity"})


def _sample() -> dict[str, str | None]:
    """A consistent case: the claim of _samples.CLAIM with its documents."""
    case: dict[str, str | None] = {f"form.{k}": v for k, v in CLAIM.items()}
    case.update({f"id.{k}": v for k, v in {**FRONT, **BACK}.items()})
    case.update({
        "card.card_number": CLAIM["account_number"], "card.bank_name": "中国工商银行",
        "card.card_holder": CLAIM["account_name"],
        "invoice.count": "2",
        "invoice.1.invoice_code": "110101", "invoice.1.invoice_number": "0001234567",
        "invoice.1.invoice_date": "2025-03-10", "invoice.1.patient_name": CLAIM["insured_name"],
        "invoice.1.total_amount": "10000.00", "invoice.1.used_in": "0",
        "invoice.2.invoice_code": "110101", "invoice.2.invoice_number": "0001234568",
        "invoice.2.invoice_date": "2025-03-12", "invoice.2.patient_name": CLAIM["insured_name"],
        "invoice.2.total_amount": "2345.67", "invoice.2.used_in": "0",
        "form.same_claim_in": "0",
        "case.documents": "claim_form,id_card_front,id_card_back,medical_invoice,"
                          "medical_invoice,bank_card",
    })
    return case


SAMPLE = _sample()


def invoices(fields: Fields) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(n, the n-th invoice's fields without the prefix), n from 1."""
    try:
        count = int(text(fields, "invoice.count") or 0)
    except ValueError:
        count = 0
    for n in range(1, count + 1):
        prefix = f"invoice.{n}."
        yield n, {k.removeprefix(prefix): v for k, v in fields.items() if k.startswith(prefix)}


def _amount(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _documents(fields: Fields) -> list[str]:
    return [d for d in (text(fields, "case.documents") or "").split(",") if d]


def _has(fields: Fields, doc_type: DocType) -> bool:
    present = _documents(fields)
    if doc_type is DocType.ID_CARD_FRONT or doc_type is DocType.ID_CARD_BACK:
        # A temporary card is front and back in one.
        return doc_type.value in present or DocType.ID_CARD_TEMPORARY.value in present
    return doc_type.value in present


@rule(
    "case.documents_complete",
    doc_types={CASE},
    reads=("case.documents", "case.kind"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "case.documents": "claim_form,id_card_front,medical_invoice,bank_card"},
                False, note="no ID card back"),
        Example({**SAMPLE, "case.documents": "claim_form,id_card_temporary,medical_invoice,"
                 "bank_card"}, True, note="a temporary card is front and back"),
        Example({"case.kind": IDENTITY, "case.documents": "id_card_front,id_card_back"}, True,
                note="an identity needs its two sides only"),
        Example({"case.kind": IDENTITY, "case.documents": "id_card_back"}, False,
                note="an identity without its front"),
    ],
)  # fmt: skip
def documents_complete(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The case holds a claim form, the ID card's front and back, an invoice and the bank card
    (an identity: the ID card's front and back)."""
    required = REQUIRED_DOCUMENTS
    if text(fields, "case.kind") == IDENTITY:
        required = {k: v for k, v in REQUIRED_DOCUMENTS.items() if k in IDENTITY_DOCUMENTS}
    gone = [words for kind, words in required.items() if not _has(fields, DocType(kind))]
    if gone:
        return failed("missing: " + ", ".join(gone), missing=gone)
    return passed()


def _same_id(a: str | None, b: str | None) -> bool | None:
    """Whether two ID numbers name the same person (a 15-digit number is its 18-digit
    form's old self); None when either is unusable."""
    if not a or not b:
        return None
    try:
        a18 = gb11643.to_18(a) if len(gb11643.compact(a)) == 15 else gb11643.compact(a)
        b18 = gb11643.to_18(b) if len(gb11643.compact(b)) == 15 else gb11643.compact(b)
    except Exception:  # noqa: BLE001 - a malformed number is for the number's own rules
        return None
    return a18.upper() == b18.upper()


@rule(
    "case.insured_matches_id_card",
    doc_types={CASE},
    reads=("form.insured_name", "form.insured_id_number", "id.name", "id.id_number"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "form.insured_id_number": STANDARD_ID_15}, True,
                note="the form's old 15-digit number is the card's"),
        Example({**SAMPLE, "form.insured_name": "李秀"}, False, note="another name"),
        Example({**SAMPLE, "form.insured_id_number": "110105194912310021"}, False,
                note="another number"),
        Example({k: v for k, v in SAMPLE.items() if not k.startswith("id.")}, False,
                expect_severity=Severity.INFO, note="no ID card: skipped"),
    ],
)  # fmt: skip
def insured_matches_id_card(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The insured on the form is the person on the ID card: name, and number (15 or 18 digits)."""
    if text(fields, "id.name") is None and text(fields, "id.id_number") is None:
        return skipped("no ID card in the case")
    problems = []
    if not same_name(text(fields, "form.insured_name"), text(fields, "id.name")):
        problems.append("the insured's name differs from the ID card's")
    same = _same_id(text(fields, "form.insured_id_number"), text(fields, "id.id_number"))
    if same is None:
        problems.append("an ID number is missing or malformed on the form or the card")
    elif not same:
        problems.append("the insured's ID number differs from the ID card's")
    return failed("; ".join(problems)) if problems else passed()


@rule(
    "case.claimant_matches_id_card",
    doc_types={CASE},
    reads=("form.claimant_name", "form.relationship", "id.name"),
    severity=Severity.ERROR,
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "form.claimant_name": "王芳"}, False, note="本人, another name"),
        Example({**SAMPLE, "form.claimant_name": "王芳", "form.relationship": "女儿"}, True,
                note="claiming for a parent: the card is the insured's"),
    ],
)  # fmt: skip
def claimant_matches_id_card(fields: Fields, ctx: RuleContext) -> CheckResult:
    """A claimant claiming for themselves (本人) is the person on the ID card."""
    if text(fields, "id.name") is None:
        return skipped("no ID card in the case")
    relationship = text(fields, "form.relationship")
    if relationship not in (None, "本人"):
        return passed("the claimant is not the insured: the card is the insured's",
                      relationship=relationship)
    if same_name(text(fields, "form.claimant_name"), text(fields, "id.name")):
        return passed()
    return failed("the claimant claims as the insured (本人) but is not the person on the ID card")


@rule(
    "case.id_card_validity",
    doc_types={CASE},
    reads=("id.birth_date", "id.valid_from", "id.valid_until"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "id.birth_date": "1990-01-01", "id.id_number": None}, False,
                note="长期 at 26"),
    ],
)  # fmt: skip
def id_card_validity(fields: Fields, ctx: RuleContext) -> list[CheckResult] | CheckResult:
    """The ID card's validity period (its back) fits the holder's age at issue (its front)."""
    if text(fields, "id.valid_from") is None:
        return skipped("no ID card back (validity) in the case")
    if text(fields, "id.birth_date") is None:
        return skipped("no ID card front (birth date) in the case")
    joined = {k.removeprefix("id."): v for k, v in fields.items() if k.startswith("id.")}
    results = id_card.validity_period.func(joined, ctx)
    results = [results] if isinstance(results, CheckResult) else list(results)
    return [r.model_copy(update={"fields": [f"id.{f}" for f in (r.fields or
                                             ("valid_from", "valid_until", "birth_date"))]})
            for r in results]


@rule(
    "case.invoice_patient_is_insured",
    doc_types={CASE},
    reads=("form.insured_name", "invoice.*.patient_name"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "invoice.2.patient_name": "王芳"}, False, note="another patient"),
    ],
)  # fmt: skip
def invoice_patient_is_insured(fields: Fields, ctx: RuleContext) -> CheckResult:
    """Every invoice's patient (交款人) is the insured."""
    insured = text(fields, "form.insured_name")
    found = list(invoices(fields))
    if not found:
        return skipped("no medical invoice in the case")
    other = [n for n, inv in found if not same_name(inv.get("patient_name"), insured)]
    if other:
        return failed(f"invoice {', '.join(map(str, other))}: the patient is not the insured",
                      fields=[f"invoice.{n}.patient_name" for n in other], invoices=other)
    return passed()


@rule(
    "case.invoice_dates",
    doc_types={CASE},
    reads=("form.accident_date", "form.policy_number", "invoice.*.invoice_date"),
    examples=[
        Example(SAMPLE, True, lookup=LOOKUP),
        Example({**SAMPLE, "invoice.1.invoice_date": "2025-03-01"}, False, lookup=LOOKUP,
                note="before the accident"),
        Example({**SAMPLE, "invoice.1.invoice_date": "2027-03-01"}, False, lookup=LOOKUP,
                note="after the policy's cover ended"),
        Example(SAMPLE, False, expect_severity=Severity.INFO,
                note="no lookup: the policy period is not checked"),
    ],
)  # fmt: skip
def invoice_dates(fields: Fields, ctx: RuleContext) -> list[CheckResult]:
    """Every invoice is dated on or after the accident and inside the policy's period of cover."""
    found = list(invoices(fields))
    if not found:
        return [skipped("no medical invoice in the case")]
    accident = parse_date(text(fields, "form.accident_date"))
    results = []
    dated = {n: parse_date(inv.get("invoice_date")) for n, inv in found}
    undated = [n for n, d in dated.items() if d is None]
    if undated:
        results.append(failed(f"invoice {', '.join(map(str, undated))}: no readable date",
                              check="date", invoices=undated))
    if accident is None:
        results.append(skipped("the form's accident date is missing or unreadable",
                               check="accident"))
    else:
        early = [n for n, d in dated.items() if d is not None and d < accident]
        results.append(failed(f"invoice {', '.join(map(str, early))}: dated before the accident",
                              check="accident", invoices=early) if early
                       else passed(check="accident"))
    policy_number = text(fields, "form.policy_number")
    if ctx.lookup is None:
        results.append(skipped("no policy system to read the period of cover from",
                               check="policy_period"))
        return results
    if policy_number is None:
        results.append(skipped("the form has no policy number", check="policy_period"))
        return results
    try:
        policy = ctx.lookup.find_policy(policy_number)
    except Exception as exc:  # noqa: BLE001 - a system down is "could not check"
        results.append(skipped(f"the policy system did not answer ({type(exc).__name__})",
                               check="policy_period"))
        return results
    if not policy:
        results.append(failed("the policy is not known to the policy system",
                              check="policy_period"))
        return results
    start, end = parse_date(policy.get("start_date")), parse_date(policy.get("end_date"))
    outside = [n for n, d in dated.items() if d is not None and
               ((start is not None and d < start) or (end is not None and d > end))]
    results.append(failed(f"invoice {', '.join(map(str, outside))}: dated outside the policy's "
                          "period of cover", check="policy_period", invoices=outside)
                   if outside else passed(check="policy_period"))
    return results


@rule(
    "case.invoices_cover_claim",
    doc_types={CASE},
    reads=("form.claim_amount", "invoice.*.total_amount"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "form.claim_amount": "20000.00"}, False, note="claims more than billed"),
    ],
)  # fmt: skip
def invoices_cover_claim(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The invoices' totals add up to at least the amount claimed (the difference is shown)."""
    found = list(invoices(fields))
    if not found:
        return skipped("no medical invoice in the case")
    claimed = _amount(text(fields, "form.claim_amount"))
    if claimed is None:
        return skipped("the form's claim amount is missing or unreadable")
    totals = {n: _amount(inv.get("total_amount")) for n, inv in found}
    unread = [n for n, t in totals.items() if t is None]
    billed = sum((t for t in totals.values() if t is not None), Decimal(0))
    difference = billed - claimed
    details = {"claimed": f"{claimed:.2f}", "invoiced": f"{billed:.2f}",
               "difference": f"{difference:.2f}"}
    if unread:
        return failed(f"invoice {', '.join(map(str, unread))}: no readable total; the others "
                      f"add up to {billed:.2f} against {claimed:.2f} claimed", **details)
    if difference < 0:
        return failed(f"the invoices add up to {billed:.2f}, {-difference:.2f} less than the "
                      f"{claimed:.2f} claimed", **details)
    return passed(f"the invoices add up to {billed:.2f} for {claimed:.2f} claimed", **details)


@rule(
    "case.bank_card_matches_account",
    doc_types={CASE},
    reads=("form.account_number", "form.claimant_name", "form.account_name", "card.card_number",
           "card.card_holder"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "card.card_number": "6222020200112233453"}, False,
                note="another card"),
        Example({**SAMPLE, "card.card_holder": "王芳"}, False, note="another holder"),
        Example({**SAMPLE, "card.card_holder": None}, True, note="no name printed on the card"),
    ],
)  # fmt: skip
def bank_card_matches_account(fields: Fields, ctx: RuleContext) -> CheckResult:
    """The bank card is the account on the form, and its holder (where printed) the claimant."""
    number = text(fields, "card.card_number")
    if number is None:
        return skipped("no bank card (or no number read on it) in the case")
    problems = []
    account = (text(fields, "form.account_number") or "").replace(" ", "")
    if account != number.replace(" ", ""):
        problems.append("the card number is not the form's account number")
    holder = text(fields, "card.card_holder")
    if holder is not None:
        payee = text(fields, "form.account_name") or text(fields, "form.claimant_name")
        if not (same_name(holder, text(fields, "form.claimant_name")) or same_name(holder, payee)):
            problems.append("the card holder is not the claimant")
    return failed("; ".join(problems)) if problems else passed()


@rule(
    "case.not_claimed_before",
    doc_types={CASE},
    reads=("invoice.*.used_in", "form.same_claim_in"),
    examples=[
        Example(SAMPLE, True),
        Example({**SAMPLE, "invoice.2.used_in": "1"}, False, note="an invoice of another claim"),
        Example({**SAMPLE, "form.same_claim_in": "1"}, False,
                note="the same policy and accident claimed in another case"),
    ],
)  # fmt: skip
def not_claimed_before(fields: Fields, ctx: RuleContext) -> CheckResult:
    """No invoice (code and number) is in another case, and the same accident is not claimed twice."""
    problems, reused = [], []
    for n, inv in invoices(fields):
        try:
            uses = int(inv.get("used_in") or 0)
        except ValueError:
            uses = 0
        if uses:
            reused.append(n)
    if reused:
        problems.append(f"invoice {', '.join(map(str, reused))}: already in another claim case "
                        "(possible duplicate claim)")
    try:
        same = int(text(fields, "form.same_claim_in") or 0)
    except ValueError:
        same = 0
    if same:
        problems.append(f"the same policy and accident date are claimed in {same} other "
                        f"case{'s' if same > 1 else ''} (possible duplicate claim)")
    if problems:
        return failed("; ".join(problems), invoices=reused, same_claim=same)
    return passed()


RULES = (
    documents_complete,
    insured_matches_id_card,
    claimant_matches_id_card,
    id_card_validity,
    invoice_patient_is_insured,
    invoice_dates,
    invoices_cover_claim,
    bank_card_matches_account,
    not_claimed_before,
)
