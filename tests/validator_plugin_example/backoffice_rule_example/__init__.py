"""Example validator plug-in: claims above a local authority limit need a second look.

The limit is this site's business rule, not a property of a valid form, which is why it
lives in a plug-in rather than among the built-in rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from stdnum.exceptions import ValidationError

from domain import cn_amount
from domain.models import CheckResult, DocType, Severity
from validators.registry import Example, RuleContext, RuleRegistry, failed, passed, rule, skipped

#: Claims above this amount (yuan) are beyond a clerk's authority to settle alone.
CLAIM_AMOUNT_LIMIT = Decimal("50000.00")


@rule(
    "example.claim_amount_limit",
    doc_types={DocType.CLAIM_FORM},
    reads=("claim_amount",),
    severity=Severity.WARNING,
    examples=[
        Example({"claim_amount": "12345.67"}, True),
        Example({"claim_amount": "50000.00"}, True, note="the limit itself is within authority"),
        Example({"claim_amount": "80000.00"}, False, note="above the limit"),
        Example({}, False, expect_severity=Severity.INFO, note="no amount: skipped"),
    ],
)
def claim_amount_limit(fields: Mapping[str, str | None], ctx: RuleContext) -> CheckResult:
    """The claimed amount is within the local settlement authority (50000 yuan)."""
    value = (fields.get("claim_amount") or "").strip()
    if not value:
        return skipped("no claim_amount")
    try:
        amount = cn_amount.parse_figures(value)
    except ValidationError:
        return skipped("claim_amount unreadable (see claim.amount_in_words_matches)")
    if amount > CLAIM_AMOUNT_LIMIT:
        return failed(
            f"claim amount exceeds the local limit of {CLAIM_AMOUNT_LIMIT}",
            limit=str(CLAIM_AMOUNT_LIMIT),
        )
    return passed()


def register(registry: RuleRegistry) -> None:
    """Entry point of the ``backoffice.validators`` group."""
    registry.register(claim_amount_limit)
