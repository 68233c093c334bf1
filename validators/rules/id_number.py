"""Rules on the identity number printed on a card front: format, check digit, components.

The three rules are separate so that each failure says one thing, and a malformed
number does not also report a checksum it cannot have: later rules report "skipped"
for what an earlier one already refused. :func:`examine_id_number` gathers the facts
once, without raising; the claim-form rule and the CLI helper use it too.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from stdnum.exceptions import InvalidLength, ValidationError

from domain import gb11643
from domain.masking import mask_id_number
from domain.models import CheckResult, DocType, Severity
from validators.fields import text
from validators.registry import Example, RuleContext, failed, passed, rule, skipped
from validators.rules._samples import STANDARD_ID

FRONT = DocType.ID_CARD_FRONT
# A temporary card carries the same fields: the front's rules apply to it too.
TEMPORARY = DocType.ID_CARD_TEMPORARY


@dataclasses.dataclass(frozen=True)
class IdNumberFacts:
    """What one identity number says, and what is wrong with it, found without raising."""

    number: str | None  # compact form, when the shape is right
    kind: str | None  # '18', '15', 'hk_mo_tw'
    format_error: str | None = None
    checksum_ok: bool | None = None  # None: no check digit (15-digit) or not checkable
    component_errors: tuple[str, ...] = ()
    birth_date: datetime.date | None = None
    sex: str | None = None
    region: gb11643.Region | None = None

    @property
    def unknown_county(self) -> bool:
        return self.region is not None and self.region.county is None

    @property
    def valid(self) -> bool:
        return (
            self.format_error is None
            and self.checksum_ok is not False
            and not self.component_errors
        )

    @property
    def id18(self) -> str | None:
        """The 18-digit form of a valid number (15-digit numbers upgraded)."""
        if not self.valid or self.number is None:
            return None
        if self.kind == "15":
            body = self.number[:6] + "19" + self.number[6:]
            return body + gb11643.calc_check_digit(body)
        return self.number

    @property
    def id15(self) -> str | None:
        """The 15-digit form, for numbers that have one (births in the 1900s, not permits)."""
        if not self.valid or self.number is None or self.kind == "hk_mo_tw":
            return None
        if self.kind == "15":
            return self.number
        return self.number[:6] + self.number[8:17] if self.number[6:8] == "19" else None

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def examine_id_number(value: str, *, today: datetime.date) -> IdNumberFacts:
    """Read an identity number as far as it goes; never raises."""
    try:
        number = gb11643.compact(value)
        shape = gb11643.kind(number)
    except InvalidLength:
        return IdNumberFacts(
            None, None, "must have 18 characters (or 15 digits if first-generation)"
        )
    except ValidationError:
        return IdNumberFacts(None, None, "must be 17 digits followed by a digit or X")
    checksum_ok = None if shape == "15" else number[17] == gb11643.calc_check_digit(number)
    errors = []
    birth_date = None
    try:
        birth_date = gb11643.check_birth_date(number, today=today)
    except ValidationError as exc:
        errors.append(str(exc))
    region = None
    try:
        region = gb11643.get_region(number)
    except ValidationError as exc:
        errors.append(str(exc))
    return IdNumberFacts(
        number=number,
        kind=shape,
        checksum_ok=checksum_ok,
        component_errors=tuple(errors),
        birth_date=birth_date,
        sex=gb11643.get_sex(number),
        region=region,
    )


def number_checks(facts: IdNumberFacts, *, allow_15: bool) -> dict[str, CheckResult]:
    """The format, checksum and components results for a number, keyed by check name.

    Shared by the card rules (which refuse 15-digit numbers: second-generation cards
    print 18 characters) and by callers that accept old numbers.
    """
    masked = facts.masked
    results: dict[str, CheckResult] = {}
    if facts.format_error is not None:
        results["format"] = failed(f"ID number {facts.format_error}")
    elif facts.kind == "15" and not allow_15:
        results["format"] = failed(
            "ID number has 15 digits: second-generation cards print 18 characters", id_number=masked
        )
    else:
        results["format"] = passed(kind=facts.kind, id_number=masked)
    if facts.format_error is not None:
        results["checksum"] = skipped("ID number malformed")
        results["components"] = skipped("ID number malformed")
        return results
    if facts.checksum_ok is None:
        results["checksum"] = skipped("15-digit numbers have no check digit", id_number=masked)
    elif facts.checksum_ok:
        results["checksum"] = passed(id_number=masked)
    else:
        results["checksum"] = failed(
            "ID number check digit is wrong (misread or mistyped character?)", id_number=masked
        )
    if facts.component_errors:
        results["components"] = failed(
            "ID number: " + "; ".join(facts.component_errors), id_number=masked
        )
    elif facts.unknown_county:
        results["components"] = failed(
            "ID number county code is not in the region data (new or misread?)",
            severity=Severity.WARNING,
            id_number=masked,
        )
    else:
        results["components"] = passed(id_number=masked)
    return results


def _front_checks(
    fields: Mapping[str, str | None], ctx: RuleContext
) -> dict[str, CheckResult] | None:
    value = text(fields, "id_number")
    if value is None:
        return None
    return number_checks(examine_id_number(value, today=ctx.today), allow_15=False)


@rule(
    "id_number.format",
    doc_types={FRONT, TEMPORARY},
    reads=("id_number",),
    examples=[
        Example({"id_number": STANDARD_ID}, True, note="the example of GB 11643-1999"),
        Example({"id_number": "810000199001010019"}, True, note="Hong Kong resident's permit"),
        Example({"id_number": "1101051949123100"}, False, note="16 characters"),
        Example({"id_number": "11010519491231002Y"}, False, note="Y is not a check character"),
        Example({"id_number": "110105491231002"}, False, note="15 digits: not on a second-generation card"),
        Example({}, False, note="missing: skipped, the required-fields rule reports it",
                expect_severity=Severity.INFO),
    ],
)  # fmt: skip
def id_number_format(fields: Mapping[str, str | None], ctx: RuleContext) -> CheckResult:
    """The ID number has 18 characters: 17 digits, then a digit or X."""
    checks = _front_checks(fields, ctx)
    return skipped("no id_number") if checks is None else checks["format"]


@rule(
    "id_number.checksum",
    doc_types={FRONT, TEMPORARY},
    reads=("id_number",),
    examples=[
        Example({"id_number": STANDARD_ID}, True),
        Example({"id_number": "110105194912310021"}, False, note="check digit should be X"),
        Example({"id_number": "11010519491231002x"}, True, note="lower-case x is read as X"),
    ],
)
def id_number_checksum(fields: Mapping[str, str | None], ctx: RuleContext) -> CheckResult:
    """The ID number's check digit (ISO 7064 MOD 11-2) is right."""
    checks = _front_checks(fields, ctx)
    return skipped("no id_number") if checks is None else checks["checksum"]


@rule(
    "id_number.components",
    doc_types={FRONT, TEMPORARY},
    reads=("id_number",),
    examples=[
        Example({"id_number": STANDARD_ID}, True),
        Example({"id_number": "110118198001010018"}, True,
                note="密云区 was created in 2015, after the birth year: still valid"),
        Example({"id_number": "810000199001010019"}, True,
                note="Hong Kong code dates from 1997; permit holders were born before"),
        Example({"id_number": "990000198001010012"}, False, note="no province 99"),
        Example({"id_number": "110105198002300015"}, False, note="30 February"),
        Example({"id_number": "110105300001010014"}, False, note="born in the year 3000"),
        Example({"id_number": "119999198001010018"}, False, expect_severity=Severity.WARNING,
                note="unknown county in a real province: a warning"),
    ],
)  # fmt: skip
def id_number_components(fields: Mapping[str, str | None], ctx: RuleContext) -> CheckResult:
    """The birth date in the ID number is real and past, its province exists, its county is known."""
    checks = _front_checks(fields, ctx)
    return skipped("no id_number") if checks is None else checks["components"]


RULES = [id_number_format, id_number_checksum, id_number_components]
