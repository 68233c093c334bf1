"""The rule registry: names, configuration, crash containment, plug-in discovery."""

from __future__ import annotations

import datetime
import importlib
import logging
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.models import CheckResult, DocType, ExtractedField, Severity
from validators.registry import (
    DuplicateRuleError,
    Example,
    PluginLoadError,
    RuleConfig,
    RuleContext,
    RuleRegistry,
    UnknownRuleError,
    check_example,
    default_registry,
    failed,
    load_registry,
    passed,
    rule,
    run_rule,
    run_rules,
    skipped,
    worst_severity,
)
from validators.rules import BUILTIN_RULES
from validators.rules._samples import CLAIM, STANDARD_ID

PLUGIN_SOURCE = Path(__file__).parent / "validator_plugin_example"
FRONT = DocType.ID_CARD_FRONT


def make_rule(name: str = "test.has_name", **kwargs):
    @rule(name, doc_types=kwargs.pop("doc_types", {FRONT}), reads=("name",), **kwargs)
    def has_name(fields, ctx):
        """The name is present."""
        return passed() if fields.get("name") else failed("name is missing")

    return has_name


# --- declaring and registering --------------------------------------------------------


def test_duplicate_name_is_refused_loudly() -> None:
    registry = RuleRegistry()
    registry.register(make_rule())
    with pytest.raises(DuplicateRuleError, match="test.has_name"):
        registry.register(make_rule())
    assert len(registry) == 1


def test_plugin_cannot_shadow_a_builtin() -> None:
    registry = load_registry()
    impostor = make_rule("id_number.checksum")
    with pytest.raises(DuplicateRuleError, match="validators.rules.id_number"):
        registry.register(impostor)


@pytest.mark.parametrize(
    "name", ["", "nodot", "Upper.case", "has space.x", "trailing.", ".leading"]
)
def test_rule_names_are_dotted_lower_case(name: str) -> None:
    with pytest.raises(ValueError):
        make_rule(name)


def test_rule_needs_doc_types_and_a_description() -> None:
    with pytest.raises(ValueError):
        make_rule(doc_types=set())

    def undocumented(fields, ctx):
        return passed()

    with pytest.raises(ValueError, match="description"):
        rule("test.undocumented", doc_types={FRONT})(undocumented)


def test_example_for_a_foreign_doc_type_is_refused() -> None:
    with pytest.raises(ValueError):
        make_rule(examples=[Example({"name": "x"}, True, doc_type=DocType.CLAIM_FORM)])


def test_description_defaults_to_the_docstring_first_line() -> None:
    assert make_rule().description == "The name is present."


def test_rules_for_get_and_order() -> None:
    registry = RuleRegistry()
    first = registry.register(make_rule("test.first"))
    second = registry.register(make_rule("test.second", doc_types={FRONT, DocType.CLAIM_FORM}))
    assert registry.rules_for(FRONT) == [first, second]
    assert registry.rules_for("claim_form") == [second]
    assert registry.rules_for(DocType.ID_CARD_BACK) == []
    assert registry.get("test.second") is second
    assert "test.first" in registry and "test.third" not in registry
    with pytest.raises(UnknownRuleError):
        registry.get("test.third")


def test_registry_decorator_registers() -> None:
    registry = RuleRegistry()

    @registry.rule("test.decorated", doc_types={FRONT}, reads=("name",))
    def decorated(fields, ctx):
        """Always passes."""
        return passed()

    assert registry.get("test.decorated") is decorated


# --- running ------------------------------------------------------------------------


def registry_with(*rules) -> RuleRegistry:
    registry = RuleRegistry()
    for each in rules:
        registry.register(each)
    return registry


def test_runner_completes_results() -> None:
    @rule("test.two_results", doc_types={FRONT}, reads=("a", "b"), severity=Severity.WARNING)
    def two_results(fields, ctx):
        """Returns two results."""
        yield failed("first")
        yield failed("second", fields=["b"], severity=Severity.ERROR)

    results = run_rules(FRONT, {}, registry=registry_with(two_results))
    assert [(r.rule, r.fields, r.severity) for r in results] == [
        ("test.two_results", ["a", "b"], Severity.WARNING),
        ("test.two_results", ["b"], Severity.ERROR),
    ]
    assert worst_severity(results) == Severity.ERROR
    assert worst_severity([]) is None


def test_config_disables_and_overrides() -> None:
    registry = registry_with(make_rule("test.a"), make_rule("test.b"))
    config = RuleConfig(disabled={"test.a"}, severity_overrides={"test.b": "info"})
    results = run_rules(FRONT, {"name": None}, registry=registry, config=config)
    assert [(r.rule, r.severity) for r in results] == [("test.b", Severity.INFO)]
    assert run_rule(registry.get("test.a"), {}, config=config) == []


def test_config_reads_from_plain_data_and_reports_typos() -> None:
    config = RuleConfig.model_validate(
        {
            "disabled": ["crossref.duplicate_claim", "claim.no_such_rule"],
            "severity_overrides": {"claim.phone_valid": "warning"},
        }
    )
    assert config.severity_overrides["claim.phone_valid"] is Severity.WARNING
    assert config.unknown_rules(default_registry()) == ["claim.no_such_rule"]
    results = run_rules("claim_form", {**CLAIM, "phone": "123"}, config=config)
    phone = [r for r in results if r.rule == "claim.phone_valid"]
    assert phone and all(r.severity is Severity.WARNING for r in phone)
    assert not any(r.rule == "crossref.duplicate_claim" for r in results)


def test_override_does_not_turn_a_skip_into_an_error() -> None:
    config = RuleConfig(severity_overrides={"crossref.customer_exists": "error"})
    results = run_rules(FRONT, {"id_number": STANDARD_ID}, config=config)
    skip = next(r for r in results if r.rule == "crossref.customer_exists")
    assert skip.details["skipped"] and skip.severity is Severity.INFO


def test_a_crashing_rule_becomes_an_error_result_without_personal_data(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="validators.registry")

    @rule("test.crashes", doc_types={FRONT}, reads=("id_number",))
    def crashes(fields, ctx):
        """Crashes with the data in the exception text."""
        raise ValueError(f"cannot handle {fields['id_number']}")

    registry = registry_with(crashes, make_rule())
    results = run_rules(FRONT, {"id_number": STANDARD_ID, "name": "李秀英"}, registry=registry)
    crash, other = results
    assert (crash.rule, crash.passed, crash.severity) == ("test.crashes", False, Severity.ERROR)
    assert crash.message == "rule failed: ValueError"
    assert STANDARD_ID not in crash.model_dump_json()
    assert "test.crashes" in caplog.text and "ValueError" in caplog.text
    assert STANDARD_ID not in caplog.text  # not even in the debug traceback
    assert other.rule == "test.has_name" and other.passed  # the others still ran


@pytest.mark.parametrize(
    "returned", [None, "ok", {"passed": True}, [CheckResult(rule="", passed=True), 42]]
)
def test_a_rule_returning_junk_becomes_an_error_result(returned) -> None:
    @rule("test.junk", doc_types={FRONT}, reads=("name",))
    def junk(fields, ctx):
        """Returns something that is not a result."""
        return returned

    [result] = run_rules(FRONT, {}, registry=registry_with(junk))
    assert result.message == "rule failed: TypeError" and result.severity is Severity.ERROR


def test_a_rule_may_report_nothing() -> None:
    @rule("test.silent", doc_types={FRONT}, reads=("name",))
    def silent(fields, ctx):
        """Has nothing to say."""
        return []

    assert run_rules(FRONT, {}, registry=registry_with(silent)) == []
    assert check_example(silent, Example({}, True)) == ["the rule returned no result"]


def test_rules_cannot_modify_the_callers_fields() -> None:
    @rule("test.mutates", doc_types={FRONT}, reads=("name",))
    def mutates(fields, ctx):
        """Tries to change its input."""
        fields["name"] = "changed"
        return passed()

    fields = {"name": "李秀英"}
    [result] = run_rules(FRONT, fields, registry=registry_with(mutates))
    assert result.message == "rule failed: TypeError"
    assert fields == {"name": "李秀英"}


def test_fields_may_be_extracted_fields_or_non_strings() -> None:
    seen = {}

    @rule("test.sees", doc_types={FRONT}, reads=("name",))
    def sees(fields, ctx):
        """Records what it was given."""
        seen.update(fields)
        return passed()

    run_rules(
        FRONT,
        {"name": ExtractedField(value="李秀英", confidence=0.9), "n": 7, "x": None},
        registry=registry_with(sees),
    )
    assert seen == {"name": "李秀英", "n": "7", "x": None}


def test_doc_type_must_be_a_doc_type() -> None:
    with pytest.raises(ValueError):
        run_rules("passport", {}, registry=RuleRegistry())


def test_context_today_is_used() -> None:
    results = run_rules(
        DocType.ID_CARD_BACK,
        {"valid_until": "2030-01-01"},
        ctx=RuleContext(today=datetime.date(2031, 1, 1)),
    )
    expired = next(r for r in results if r.rule == "id_card.not_expired")
    assert not expired.passed and expired.severity is Severity.ERROR


def test_skipped_is_info_and_not_passed() -> None:
    result = skipped("no lookup")
    assert (result.passed, result.severity, result.details["skipped"]) == (
        False,
        Severity.INFO,
        True,
    )


# --- discovery ----------------------------------------------------------------------


def test_load_registry_finds_the_builtins() -> None:
    registry = load_registry()
    assert [r.name for r in BUILTIN_RULES] == registry.names()[: len(BUILTIN_RULES)]
    assert default_registry() is default_registry()


def write_distribution(site: Path, name: str, module_source: str, entry_point: str) -> None:
    """Lay out an installed distribution by hand: a module and its dist-info."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[backoffice.validators]\n{entry_point} = {module}:register\n", encoding="utf-8"
    )


@pytest.fixture
def site_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for the duration of a test; its modules are forgotten after."""
    site = tmp_path / "site"
    site.mkdir()
    before = set(sys.modules)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            if str(site) in str(getattr(module, "__file__", "") or ""):
                del sys.modules[name]
        importlib.invalidate_caches()


def test_entry_point_plugin_is_loaded_after_the_builtins(site_dir: Path) -> None:
    write_distribution(
        site_dir,
        "bo-plugin-one",
        """
        from domain.models import DocType
        from validators.registry import passed, rule

        @rule("one.always", doc_types={DocType.CLAIM_FORM}, reads=("policy_number",))
        def always(fields, ctx):
            '''Always passes.'''
            return passed()

        def register(registry):
            registry.register(always)
    """,
        "one",
    )
    names = load_registry().names()
    assert names[-1] == "one.always"
    assert names.index("id_number.format") < names.index("one.always")


def test_plugin_reusing_a_builtin_name_is_refused(site_dir: Path) -> None:
    write_distribution(
        site_dir,
        "bo-plugin-clash",
        """
        from domain.models import DocType
        from validators.registry import passed, rule

        @rule("claim.phone_valid", doc_types={DocType.CLAIM_FORM}, reads=("phone",))
        def mine(fields, ctx):
            '''Another phone rule.'''
            return passed()

        def register(registry):
            registry.register(mine)
    """,
        "clash",
    )
    with pytest.raises(DuplicateRuleError, match="claim.phone_valid"):
        load_registry()


def test_broken_plugin_fails_loudly(site_dir: Path) -> None:
    write_distribution(site_dir, "bo-plugin-broken", "import no_such_module_here\n", "broken")
    with pytest.raises(PluginLoadError, match="broken"):
        load_registry()


def test_example_plugin_package_installs_and_registers(tmp_path: Path, site_dir: Path) -> None:
    """Build and install tests/validator_plugin_example as a user would, offline."""
    source = tmp_path / "src"
    # Copy first: building writes build/ and *.egg-info next to the sources.
    shutil.copytree(
        PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(site_dir),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    importlib.invalidate_caches()

    registry = load_registry()
    plugin_rule = registry.get("example.claim_amount_limit")
    assert plugin_rule.func.__module__ == "backoffice_rule_example"
    assert plugin_rule.severity is Severity.WARNING
    assert {e.expect_passed for e in plugin_rule.examples} == {True, False}
    for example in plugin_rule.examples:
        assert check_example(plugin_rule, example) == [], example.note

    big = run_rules("claim_form", {**CLAIM, "claim_amount": "80000.00"}, registry=registry)
    limit = [r for r in big if r.rule == "example.claim_amount_limit"]
    assert [(r.passed, r.severity) for r in limit] == [(False, Severity.WARNING)]
    assert not any(
        r.rule == "example.claim_amount_limit"
        for r in run_rules("id_card_front", {}, registry=registry)
    )
