"""The built-in rules, registered through the ``backoffice.validators`` entry point.

pyproject.toml declares ``builtin = "validators.rules:register"``: built-ins come in
through the same door as third-party plug-ins, so a plug-in's rule with a built-in
rule's name is refused like any other duplicate.

Rule names by family: ``id_number.*`` and ``id_card.*`` (card front and back),
``claim.*`` (claim form), ``invoice.*`` (medical invoice), ``bank_card.*`` (bank card),
``crossref.*`` (against the downstream systems), ``case.*`` (a claim case's documents
against one another).
"""

from __future__ import annotations

from validators.registry import Rule, RuleRegistry
from validators.rules import (
    bank_card,
    case,
    claim_form,
    crossref,
    id_card,
    id_number,
    invoice,
)

__all__ = ["BUILTIN_RULES", "register"]

#: Every built-in rule, in the order results are reported.
BUILTIN_RULES: tuple[Rule, ...] = (
    *id_number.RULES,
    *id_card.RULES,
    *claim_form.RULES,
    *invoice.RULES,
    *bank_card.RULES,
    *crossref.RULES,
    *case.RULES,
)


def register(registry: RuleRegistry) -> None:
    """Register the built-in rules (the ``backoffice.validators`` entry point)."""
    for rule in BUILTIN_RULES:
        registry.register(rule)
