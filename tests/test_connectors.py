"""Connectors against the real sandbox: REST, SQL and file drop; mappings from configuration."""

from __future__ import annotations

import datetime
import doctest
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from conftest import FIXTURES

import backoffice.connectors.mapping as mapping_module
from backoffice.connectors import (
    Connector,
    Outgoing,
    PermanentError,
    TransientError,
    build_connector,
    build_connectors,
    load_targets,
)
from backoffice.connectors.config import TargetsConfig, expand
from backoffice.connectors.filedrop import FileDropConnector
from backoffice.connectors.rest import RestConnector
from backoffice.lookup_rest import RestLookup
from backoffice.sandbox.common import Faults
from backoffice.sandbox.runner import run_sandbox
from backoffice.sandbox.seed import IDCARD_TRUTH, load_people
from domain import gb11643
from validators.lookup import SystemLookup


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture
def config(sandbox):
    sandbox.set_faults(None)
    yield sandbox.targets_config(timeout_seconds=2)
    sandbox.set_faults(None)


def claim_message(person, key, **overrides) -> Outgoing:
    fields = {"policy_number": person.policy_number, "insured_name": person.name,
              "insured_id_number": person.id_number, "accident_date": "2025-06-01",
              "claim_amount": "321.50", "account_name": person.name,
              "account_number": "6222020200112233446", "bank_name": "中国工商银行",
              "application_date": "2025-06-03", **overrides}
    return Outgoing(key, "claims", 1, {"document_ref": f"ref-{key}", "doc_type": "claim_form",
                                       "fields": fields})


def front_message(key, target="core", number="11010519491231002X", name="李秀英",
                  birth="1949-12-31") -> Outgoing:
    return Outgoing(key, target, 2, {"document_ref": f"ref-{key}", "doc_type": "id_card_front",
                                     "fields": {"id_number": number, "name": name,
                                                "birth_date": birth, "address": "北京市"}})


def _count(db, sql, params=()):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_mapping_doctests():
    assert doctest.testmod(mapping_module).failed == 0


def test_packaged_targets_load_and_route():
    config = load_targets()
    assert config.targets_for("id_card_front") == ["core"]
    assert config.targets_for("claim_form") == ["claims", "payments"]
    assert config.targets_for("id_card_back") == []
    assert {t.kind for t in config.targets.values()} == {"rest", "sql", "filedrop"}


def test_environment_expansion_and_validation():
    assert expand({"a": ["${NOPE_X:-dflt}", "${HOME_Y}"]}, {"HOME_Y": "h"}) == \
        {"a": ["dflt", "h"]}
    with pytest.raises(KeyError):
        expand("${SURELY_UNSET_VARIABLE_1}")
    with pytest.raises(ValueError):
        TargetsConfig.model_validate({"routes": {"claim_form": ["nowhere"]}, "targets": {}})
    with pytest.raises(ValueError):
        TargetsConfig.model_validate({"targets": {"x": {
            "kind": "sql", "url": "sqlite://", "table": "a; drop table b", "id_column": "id",
            "mapping": {}}}})


def test_every_connector_satisfies_the_protocol(config):
    with build_connectors(config, ["core", "claims", "payments", "core_sql"]) as connectors:
        for name, connector in connectors.items():
            assert isinstance(connector, Connector), name


def test_rest_posts_with_the_claims_systems_names_and_legacy_id(sandbox, config):
    legacy = next(p for p in load_people(FIXTURES / IDCARD_TRUTH) if p.legacy)
    modern = next(p for p in load_people(FIXTURES / IDCARD_TRUTH) if not p.legacy)
    claims = build_connector("claims", config)
    for person in (legacy, modern):
        result = claims.post(claim_message(person, f"map-{person.index}"))
        assert result.remote_id.startswith("CL") and not result.replayed
        with sqlite3.connect(sandbox.claims.db_path) as conn:
            stored, accident = conn.execute(
                "SELECT insured_idno, accident_date FROM claim WHERE idempotency_key = ?",
                (f"map-{person.index}",)).fetchone()
        assert stored == (gb11643.to_15(person.id_number) if person.legacy else person.id_number)
        assert accident == "2025-06-01"  # sent as 20250601, stored as a date
    again = claims.post(claim_message(legacy, f"map-{legacy.index}"))
    assert again.replayed
    claims.close()


def test_rest_classifies_replies(sandbox, config):
    core = build_connector("core", config)
    with pytest.raises(PermanentError) as rejected:
        core.post(front_message("bad-1", number="110105194912310021"))
    assert rejected.value.status_code == 422 and "id_number" in rejected.value.message
    sandbox.core.set_faults(Faults(error_rate=1.0))
    with pytest.raises(TransientError) as unavailable:
        core.post(front_message("t-503"))
    assert unavailable.value.status_code == 503
    sandbox.core.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(TransientError, match="connection"):
        core.post(front_message("t-drop"))
    sandbox.core.set_faults(Faults(timeout_rate=1.0, timeout_seconds=3))
    with pytest.raises(TransientError, match="timeout"):
        core.post(front_message("t-timeout"))
    sandbox.core.set_faults(None)
    assert core.post(front_message("t-drop")).replayed
    core.close()


def test_rest_errors_carry_no_personal_data(sandbox, config):
    claims = build_connector("claims", config)
    person = load_people(FIXTURES / IDCARD_TRUTH)[1]
    with pytest.raises(PermanentError) as exc:
        claims.post(claim_message(person, "pii-1", claim_amount="9x9",
                                  account_number="62220202001122334467"))
    message = exc.value.message
    assert "CLAIM_AMT" in message
    assert "9x9" not in message and person.name not in message
    assert "62220202001122334467" not in message
    claims.close()


def test_refused_connection_is_transient(config):
    dead = config.targets["core"].model_copy(update={"base_url": "http://127.0.0.1:9",
                                                     "connect_timeout_seconds": 1})
    with pytest.raises(TransientError):
        RestConnector("core", dead).post(front_message("nowhere"))


def test_sql_connector_inserts_in_one_transaction_with_its_key(sandbox, config):
    sql = build_connector("core_sql", config)
    first = sql.post(front_message("sql-1", target="core_sql"))
    again = sql.post(front_message("sql-1", target="core_sql"))
    assert again.replayed and again.remote_id == first.remote_id
    db = sandbox.core.db_path
    assert _count(db, "SELECT count(*) FROM kyc_record WHERE idempotency_key='sql-1'") == 1
    assert _count(db, "SELECT count(*) FROM idempotency WHERE key='sql-1'") == 1
    with pytest.raises(PermanentError, match="different payload"):
        sql.post(front_message("sql-1", target="core_sql", name="李秀"))
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: sql.post(front_message("sql-2", target="core_sql")),
                                range(12)))
    assert len({r.remote_id for r in results}) == 1
    assert _count(db, "SELECT count(*) FROM kyc_record WHERE idempotency_key='sql-2'") == 1
    assert {h.key for h in sql.held()} >= {"sql-1", "sql-2"}
    assert sql.find("customer", {"id_number": load_people(FIXTURES / IDCARD_TRUTH)[0].id_number})[0]["name"] == \
        load_people(FIXTURES / IDCARD_TRUTH)[0].name
    sql.close()


def test_file_drop_writes_csv_and_a_checksummed_manifest(config, sandbox):
    drop = build_connector("payments", config)
    assert isinstance(drop, FileDropConnector)
    person = load_people(FIXTURES / IDCARD_TRUTH)[0]
    message = Outgoing("bo-1-abc:payments:v1", "payments", 1, claim_message(person, "x").payload)
    result = drop.post(message)
    csv_path = drop.directory / f"{result.remote_id}.csv"
    manifest = json.loads((drop.directory / f"{result.remote_id}.manifest.json").read_text())
    header, row = csv_path.read_text(encoding="utf-8").splitlines()
    assert header.split(",") == list(config.targets["payments"].mapping)
    assert "321.50" in row and manifest["idempotency_key"] == message.key
    assert drop.post(message).replayed
    held = {h.key: h for h in drop.held()}
    assert held[message.key].problem is None
    csv_path.write_text(header + "\n" + row.replace("321.50", "999.99") + "\n")
    assert next(h for h in drop.held() if h.key == message.key).problem
    assert not [p for p in drop.directory.iterdir() if p.name.endswith(".tmp")]


def test_rest_lookup_is_a_system_lookup(sandbox):
    lookup = RestLookup(sandbox.core.url, sandbox.claims.url)
    assert isinstance(lookup, SystemLookup)
    person = load_people(FIXTURES / IDCARD_TRUTH)[0]
    assert lookup.find_customer(person.id_number)["customer_id"] == person.customer_id
    assert lookup.find_policy("P0000000000") is None
    claims = lookup.find_claims(person.policy_number, None, None)
    assert any(c["status"] == "paid" for c in claims)
    assert lookup.find_claims(person.policy_number, datetime.date(2025, 2, 14),
                              Decimal("800.00"))
    assert not lookup.find_claims(person.policy_number, datetime.date(2025, 2, 14),
                                  Decimal(801))
    via_config = RestLookup.from_targets(sandbox.targets_config())
    assert via_config.find_customer(person.id_number)["name"] == person.name
    lookup.close()
    via_config.close()
