"""The rule registry: declare rules, discover plug-ins, run every rule for a document.

A rule is a plain function ``func(fields, ctx)`` over a flat mapping of field name to
``str | None`` (normal forms, see ARCHITECTURE.md) and a :class:`RuleContext`. It
returns one :class:`~domain.models.CheckResult` or an iterable of them. Rules report
bad data as failed results; :func:`run_rules` collects everything and turns a rule that
raises anyway (a bug) into an error-severity result, so one broken rule never hides the
others.

Built-in rules and third-party plug-ins come in through the same door: the entry-point
group ``backoffice.validators``, whose entries are callables ``register(registry)``.

A rule declares examples (:class:`Example`) that the test suite runs, so a new rule
ships with its own evidence.

>>> from domain.models import DocType, Severity
>>> registry = RuleRegistry()
>>> @registry.rule(
...     "example.has_name",
...     doc_types={DocType.ID_CARD_FRONT},
...     reads=("name",),
...     examples=[Example({"name": "李秀英"}, True), Example({"name": ""}, False)],
... )
... def has_name(fields, ctx):
...     '''The name must be present.'''
...     return passed() if fields.get("name") else failed("name is missing")
>>> [(r.rule, r.passed, r.severity.value, r.message)
...  for r in run_rules("id_card_front", {"name": None}, registry=registry)]
[('example.has_name', False, 'error', 'name is missing')]
>>> config = RuleConfig(severity_overrides={"example.has_name": "warning"})
>>> run_rules("id_card_front", {}, registry=registry, config=config)[0].severity.value
'warning'
>>> [check_example(has_name, example) for example in has_name.examples]
[[], []]
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, Field

from domain.models import CheckResult, DocType, ExtractedField, Severity
from validators.lookup import SystemLookup

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXAMPLE_TODAY",
    "DuplicateRuleError",
    "Example",
    "PluginLoadError",
    "Rule",
    "RuleConfig",
    "RuleContext",
    "RuleFunc",
    "RuleRegistry",
    "SystemLookup",
    "UnknownRuleError",
    "check_example",
    "default_registry",
    "failed",
    "load_registry",
    "passed",
    "rule",
    "run_example",
    "run_rule",
    "run_rules",
    "skipped",
    "worst_severity",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "backoffice.validators"
_BUILTIN_ENTRY_POINT = "validators.rules:register"

#: The day examples run on unless they say otherwise, so that they never age.
EXAMPLE_TODAY = datetime.date(2025, 6, 1)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

Fields = Mapping[str, str | None]


class DuplicateRuleError(ValueError):
    """Two rules (built-in or plug-in) claim the same name."""


class UnknownRuleError(KeyError):
    """No rule of that name is registered."""


class PluginLoadError(RuntimeError):
    """A ``backoffice.validators`` entry point could not be loaded or failed to register."""


@dataclasses.dataclass(frozen=True)
class RuleContext:
    """What a rule may know besides the fields: the date, and the downstream systems."""

    today: datetime.date = dataclasses.field(default_factory=datetime.date.today)
    lookup: SystemLookup | None = None


RuleFunc = Callable[[Fields, RuleContext], CheckResult | Iterable[CheckResult]]


@dataclasses.dataclass(frozen=True)
class Example:
    """A worked case a rule declares: these fields should pass (or fail) the rule.

    ``expect_severity`` pins the worst severity among the failed results, for rules
    whose failures are not all equally grave. ``today`` and ``lookup`` make the case
    reproducible.
    """

    fields: Mapping[str, str | None]
    expect_passed: bool
    doc_type: DocType | None = None
    note: str = ""
    today: datetime.date = EXAMPLE_TODAY
    lookup: SystemLookup | None = None
    expect_severity: Severity | None = None


@dataclasses.dataclass(frozen=True)
class Rule:
    """A named check over the fields of some document types, with its examples."""

    name: str
    doc_types: frozenset[DocType]
    reads: tuple[str, ...]
    func: RuleFunc
    severity: Severity = Severity.ERROR
    description: str = ""
    examples: tuple[Example, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"rule name {self.name!r} must be dotted lower-case, e.g. 'claim.amount_matches'"
            )
        doc_types = frozenset(DocType(d) for d in self.doc_types)
        if not doc_types:
            raise ValueError(f"rule {self.name}: doc_types is empty")
        description = " ".join(self.description.split())
        if not description:
            raise ValueError(f"rule {self.name}: a one-line description is required")
        examples = tuple(self.examples)
        for example in examples:
            if not isinstance(example, Example):
                raise TypeError(f"rule {self.name}: examples must be Example objects")
            if example.doc_type is not None and DocType(example.doc_type) not in doc_types:
                raise ValueError(
                    f"rule {self.name}: example for {example.doc_type}, not a doc type of the rule"
                )
        if not callable(self.func):
            raise TypeError(f"rule {self.name}: func is not callable")
        object.__setattr__(self, "doc_types", doc_types)
        object.__setattr__(self, "reads", tuple(self.reads))
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "examples", examples)

    def applies_to(self, doc_type: DocType | str) -> bool:
        return DocType(doc_type) in self.doc_types


def rule(
    name: str,
    *,
    doc_types: Iterable[DocType | str],
    reads: Iterable[str] = (),
    severity: Severity | str = Severity.ERROR,
    description: str | None = None,
    examples: Iterable[Example] = (),
) -> Callable[[RuleFunc], Rule]:
    """Decorate a rule function to make it a :class:`Rule` (not yet registered).

    The description defaults to the first line of the function's docstring.
    """

    def decorate(func: RuleFunc) -> Rule:
        doc_line = (func.__doc__ or "").strip().splitlines()[:1]
        return Rule(
            name=name,
            doc_types=frozenset(DocType(d) for d in doc_types),
            reads=tuple(reads),
            func=func,
            severity=Severity(severity),
            description=description if description is not None else "".join(doc_line),
            examples=tuple(examples),
        )

    return decorate


class RuleRegistry:
    """The rules known to a process, by unique name, in registration order."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def register(self, new_rule: Rule) -> Rule:
        """Add a rule; a second rule with the same name raises DuplicateRuleError."""
        if not isinstance(new_rule, Rule):
            raise TypeError(f"expected a Rule, got {type(new_rule).__name__}")
        existing = self._rules.get(new_rule.name)
        if existing is not None:
            raise DuplicateRuleError(
                f"rule {new_rule.name!r} is already registered "
                f"(by {_origin(existing.func)}; now again by {_origin(new_rule.func)})"
            )
        self._rules[new_rule.name] = new_rule
        return new_rule

    def rule(self, name: str, **kwargs: Any) -> Callable[[RuleFunc], Rule]:
        """Decorate a function to make it a rule and register it here (see :func:`rule`)."""

        def decorate(func: RuleFunc) -> Rule:
            return self.register(rule(name, **kwargs)(func))

        return decorate

    def rules_for(self, doc_type: DocType | str) -> list[Rule]:
        """The rules that apply to a document type, in registration order."""
        doc_type = DocType(doc_type)
        return [r for r in self._rules.values() if doc_type in r.doc_types]

    def get(self, name: str) -> Rule:
        try:
            return self._rules[name]
        except KeyError:
            raise UnknownRuleError(name) from None

    def names(self) -> list[str]:
        return list(self._rules)

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(list(self._rules.values()))

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"RuleRegistry({len(self)} rules)"


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


class RuleConfig(BaseModel):
    """Site configuration of the rules: which are off, and which weigh differently.

    A severity override applies to a rule's passed and failed results, not to its
    "skipped" results (they say nothing about the data) nor to a crash (always error).
    """

    disabled: set[str] = Field(default_factory=set)
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)

    def unknown_rules(self, registry: RuleRegistry) -> list[str]:
        """Names in this configuration that no registered rule has (typos, removed plug-ins)."""
        named = self.disabled | set(self.severity_overrides)
        return sorted(name for name in named if name not in registry)


# --- building results -------------------------------------------------------------
# The runner fills in what a rule leaves out: the rule's name always, its `reads` as
# the fields, its declared severity. Rules state only what they know.


def passed(
    message: str = "", *, fields: Iterable[str] | None = None, **details: Any
) -> CheckResult:
    """A passed check (the runner adds the rule name, fields and severity)."""
    return _result(True, message, fields, None, details)


def failed(
    message: str,
    *,
    fields: Iterable[str] | None = None,
    severity: Severity | str | None = None,
    **details: Any,
) -> CheckResult:
    """A failed check; `severity` only when it differs from the rule's declared one."""
    return _result(False, message, fields, severity, details)


def skipped(reason: str, *, fields: Iterable[str] | None = None, **details: Any) -> CheckResult:
    """A check that could not be made (input missing, no lookup): info, not passed.

    Severity overrides never apply to it: it says nothing about the data.
    """
    return _result(False, f"skipped: {reason}", fields, Severity.INFO, {"skipped": True, **details})


def _result(
    ok: bool,
    message: str,
    fields: Iterable[str] | None,
    severity: Severity | str | None,
    details: dict[str, Any],
) -> CheckResult:
    values: dict[str, Any] = {"rule": "", "passed": ok, "message": message, "details": details}
    if fields is not None:
        values["fields"] = list(fields)
    if severity is not None:
        values["severity"] = Severity(severity)
    return CheckResult(**values)


def worst_severity(results: Iterable[CheckResult]) -> Severity | None:
    """The highest severity among failed results, or None when nothing failed."""
    failures = [r.severity for r in results if not r.passed]
    return max(failures, key=lambda s: s.rank) if failures else None


# --- running ----------------------------------------------------------------------


def _freeze(fields: Mapping[str, Any] | None) -> Mapping[str, str | None]:
    """A read-only copy of the fields with values as ``str | None``.

    ExtractedField values are unwrapped so flows may pass what extractors return.
    """
    frozen: dict[str, str | None] = {}
    for key, value in (fields or {}).items():
        if isinstance(value, ExtractedField):
            value = value.value
        frozen[str(key)] = (
            None if value is None else value if isinstance(value, str) else str(value)
        )
    return MappingProxyType(frozen)


def _crash(the_rule: Rule, exc: BaseException) -> CheckResult:
    # The exception text may quote the data (int('11010519…')): only its type goes out,
    # to the result and to the log; the traceback is logged as frames without the text.
    log.error("validator rule %s failed: %s", the_rule.name, type(exc).__name__)
    log.debug(
        "validator rule %s traceback:\n%s",
        the_rule.name,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return CheckResult(
        rule=the_rule.name,
        fields=list(the_rule.reads),
        severity=Severity.ERROR,
        passed=False,
        message=f"rule failed: {type(exc).__name__}",
        details={"crashed": True, "exception": type(exc).__name__},
    )


def _collect(output: Any) -> list[CheckResult]:
    if isinstance(output, CheckResult):
        return [output]
    if output is None or isinstance(output, (str, bytes, Mapping)):
        raise TypeError(f"a rule must return CheckResult(s), not {type(output).__name__}")
    results = list(output)
    for item in results:
        if not isinstance(item, CheckResult):
            raise TypeError(f"a rule must return CheckResult(s), not {type(item).__name__}")
    return results


def run_rule(
    the_rule: Rule,
    fields: Mapping[str, Any] | None,
    *,
    ctx: RuleContext | None = None,
    config: RuleConfig | None = None,
) -> list[CheckResult]:
    """Run one rule and return its completed results; never raises for any field values.

    A disabled rule returns no results.
    """
    if config is not None and the_rule.name in config.disabled:
        return []
    ctx = ctx if ctx is not None else RuleContext()
    view = _freeze(fields)
    try:
        results = _collect(the_rule.func(view, ctx))
    except Exception as exc:  # noqa: BLE001 - a buggy rule must not stop the others
        return [_crash(the_rule, exc)]
    override = config.severity_overrides.get(the_rule.name) if config is not None else None
    completed = []
    for result in results:
        update: dict[str, Any] = {"rule": the_rule.name}
        if "fields" not in result.model_fields_set:
            update["fields"] = list(the_rule.reads)
        if "severity" not in result.model_fields_set:
            update["severity"] = the_rule.severity
        if override is not None and not result.details.get("skipped"):
            update["severity"] = override
        completed.append(result.model_copy(update=update))
    return completed


def run_rules(
    doc_type: DocType | str,
    fields: Mapping[str, Any] | None,
    *,
    registry: RuleRegistry | None = None,
    config: RuleConfig | None = None,
    ctx: RuleContext | None = None,
) -> list[CheckResult]:
    """Run every enabled rule for the document type and return all their results.

    Never raises because of field values; a rule that raises becomes an error result
    "rule failed: <ExceptionType>". A doc_type that is not a DocType value is a
    caller's bug and raises ValueError.
    """
    doc_type = DocType(doc_type)
    registry = registry if registry is not None else default_registry()
    ctx = ctx if ctx is not None else RuleContext()
    view = _freeze(fields)
    results: list[CheckResult] = []
    for the_rule in registry.rules_for(doc_type):
        results.extend(run_rule(the_rule, view, ctx=ctx, config=config))
    return results


# --- examples -----------------------------------------------------------------------


def run_example(the_rule: Rule, example: Example) -> list[CheckResult]:
    """Run a rule on one of its examples, on the example's day and lookup."""
    return run_rule(
        the_rule, example.fields, ctx=RuleContext(today=example.today, lookup=example.lookup)
    )


def check_example(the_rule: Rule, example: Example) -> list[str]:
    """Return what is wrong with the rule's behaviour on an example; empty when right."""
    results = run_example(the_rule, example)
    problems = []
    if not results:
        problems.append("the rule returned no result")
    crashed = [r for r in results if r.details.get("crashed")]
    if crashed:
        problems.append(crashed[0].message)
    outcome = all(r.passed for r in results)
    if results and outcome != example.expect_passed:
        messages = "; ".join(r.message for r in results if not r.passed) or "all passed"
        expected = "pass" if example.expect_passed else "fail"
        problems.append(f"expected to {expected}, got: {messages}")
    if example.expect_severity is not None:
        worst = worst_severity(results)
        if worst != Severity(example.expect_severity):
            problems.append(f"expected worst severity {example.expect_severity}, got {worst}")
    return problems


# --- discovery ----------------------------------------------------------------------


def load_registry(group: str = ENTRY_POINT_GROUP) -> RuleRegistry:
    """Build a registry from the entry points of `group`: built-ins first, then by name.

    An entry point that cannot be loaded or fails while registering raises
    PluginLoadError; two rules with one name raise DuplicateRuleError. A project that is
    not installed (its ``builtin`` entry point is missing, e.g. a bare checkout on
    sys.path) raises PluginLoadError saying so.
    """
    registry = RuleRegistry()
    found = sorted(
        entry_points(group=group),
        key=lambda ep: (ep.value != _BUILTIN_ENTRY_POINT, ep.name, ep.value),
    )
    seen: set[tuple[str, str]] = set()
    for ep in found:
        # The same distribution can be visible twice (installed and on sys.path).
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        try:
            register = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"validator plug-in {ep.name!r} ({ep.value}) could not be loaded"
            ) from exc
        try:
            register(registry)
        except DuplicateRuleError:
            raise
        except Exception as exc:
            raise PluginLoadError(
                f"validator plug-in {ep.name!r} ({ep.value}) failed to register"
            ) from exc
    if group == ENTRY_POINT_GROUP and not any(ep.value == _BUILTIN_ENTRY_POINT for ep in found):
        # The built-ins come in only through their entry point (no import of the rules
        # from here: the rules import this module).
        raise PluginLoadError(
            "entry point 'builtin = validators.rules:register' not found: the project is not "
            "installed (pip install ., or make setup)")
    return registry


@functools.cache
def default_registry() -> RuleRegistry:
    """The process-wide registry, loaded once from entry points (see :func:`load_registry`).

    Call ``default_registry.cache_clear()`` after installing a plug-in at run time.
    """
    return load_registry()
