"""Validation rules for back-office documents: a registry of rules and the rules themselves.

Rules know nothing of OCR: they read a flat mapping of field name to ``str | None`` in
the normal forms of ARCHITECTURE.md and return ``CheckResult``s. Entry points:

* :func:`run_rules` — run every rule for a document type;
* :func:`default_registry` / :func:`load_registry` — built-ins and plug-ins from the
  entry-point group ``backoffice.validators``;
* :mod:`domain.gb11643`, :mod:`domain.cn_amount` — identity numbers and amounts in
  capitals, in the style of python-stdnum;
* :func:`validators.cli_support.describe_id_number` — one identity number, explained.
"""

from domain.masking import mask_id_number
from validators.lookup import InMemoryLookup, SystemLookup
from validators.registry import (
    DuplicateRuleError,
    Example,
    PluginLoadError,
    Rule,
    RuleConfig,
    RuleContext,
    RuleRegistry,
    UnknownRuleError,
    default_registry,
    load_registry,
    rule,
    run_rule,
    run_rules,
)

__all__ = [
    "DuplicateRuleError",
    "Example",
    "InMemoryLookup",
    "PluginLoadError",
    "Rule",
    "RuleConfig",
    "RuleContext",
    "RuleRegistry",
    "SystemLookup",
    "UnknownRuleError",
    "default_registry",
    "load_registry",
    "mask_id_number",
    "rule",
    "run_rule",
    "run_rules",
]
