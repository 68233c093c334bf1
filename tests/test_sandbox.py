"""The sandbox systems: real HTTP on 127.0.0.1, seeded from the fixtures, idempotent, faulty
on demand."""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from conftest import FIXTURES

from backoffice.assess import validate_fields
from backoffice.sandbox.common import Faults
from backoffice.sandbox.runner import SandboxError, run_sandbox, start_system
from backoffice.sandbox.seed import CLAIMS_TRUTH, IDCARD_TRUTH, load_claim_truth, load_people
from domain import gb11643
from domain.models import DocType
from validators.lookup import SystemLookup

TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with run_sandbox(tmp_path_factory.mktemp("sandbox")) as sb:
        yield sb


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_faults(sandbox):
    sandbox.set_faults(None)
    yield
    sandbox.set_faults(None)


def _rows(db_path, sql, params=()):
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


def kyc(id_number="42282319420103946X", name="白煜洁", birth="1942-01-03", ref="t-1"):
    return {"id_number": id_number, "name": name, "birth_date": birth, "source_ref": ref}


def test_runs_on_loopback_and_stops(tmp_path):
    server = start_system("core", tmp_path / "core.db")
    assert server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    server.stop()
    assert not server.alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)


def test_refuses_a_public_interface(tmp_path):
    with pytest.raises(SandboxError):
        start_system("core", tmp_path / "core.db", host="0.0.0.0")


def test_seed_agrees_with_the_id_card_fixtures(sandbox, client):
    people = load_people(FIXTURES / IDCARD_TRUTH)
    assert len(people) >= 8
    lookup = sandbox.lookup()
    assert isinstance(lookup, SystemLookup)
    for p in people:
        customer = lookup.find_customer(p.id_number)
        assert customer["name"] == p.name and customer["birth_date"] == p.birth_date
        assert customer["accounts"], "every customer has an account"
        id15 = gb11643.to_15(p.id_number) if p.id_number[6:8] == "19" else None
        insured = lookup.find_insured(p.id_number, id15)
        assert [r["id_number"] for r in insured if r["policy_number"] == p.policy_number] == \
            [id15 if p.legacy else p.id_number]
        assert lookup.find_policy(p.policy_number)["status"] == "in_force"
    assert any(p.legacy for p in people) and any(not p.legacy for p in people)


def test_cross_system_rules_pass_on_the_fixtures(sandbox):
    """The fixtures' ID card fronts and claim forms agree with what the systems hold."""
    lookup = sandbox.lookup()
    for p in load_people(FIXTURES / IDCARD_TRUTH):
        fields = {"name": p.name, "sex": p.sex, "ethnicity": p.ethnicity,
                  "birth_date": p.birth_date, "address": p.address, "id_number": p.id_number}
        checks = [c for c in validate_fields(DocType.ID_CARD_FRONT, fields, today=TODAY,
                                             lookup=lookup) if c.rule.startswith("crossref.")]
        assert checks and all(c.passed for c in checks), [c.message for c in checks]
    claims = load_claim_truth(FIXTURES / CLAIMS_TRUTH)
    if not claims:
        pytest.skip("fixtures/claims/truth.jsonl not generated yet")
    for record in claims:
        checks = [c for c in validate_fields(DocType.CLAIM_FORM, record["fields"], today=TODAY,
                                             lookup=lookup) if c.rule.startswith("crossref.")]
        failed = [f"{c.rule}: {c.message}" for c in checks if not c.passed
                  and c.severity != "info"]
        assert not failed, (record["file"], failed)


def test_a_repeat_returns_the_first_result_and_creates_nothing(sandbox, client):
    url = f"{sandbox.core.url}/kyc-records"
    first = client.post(url, json=kyc(ref="rep"), headers={"Idempotency-Key": "rep-1"})
    again = client.post(url, json=kyc(ref="rep"), headers={"Idempotency-Key": "rep-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _rows(sandbox.core.db_path, "SELECT count(*) FROM kyc_record WHERE "
                 "idempotency_key = 'rep-1'") == [(1,)]
    other = client.post(url, json=kyc(ref="rep", name="白煜"), headers={"Idempotency-Key": "rep-1"})
    assert other.status_code == 409


def test_concurrent_repeats_create_one_record(sandbox):
    url = f"{sandbox.claims.url}/claims"
    body = {"POLICY_NO": "P2025100001", "INSURED_IDNO": "632625196707095477",
            "INSURED_NAME": "平措", "ACCIDENT_DT": "20250310", "CLAIM_AMT": "100.00",
            "EXT_REF": "conc"}
    with httpx.Client(timeout=10) as c, ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: c.post(url, json=body,
                                                 headers={"Idempotency-Key": "conc-1"}),
                                range(16)))
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["claim_id"] for r in replies}) == 1
    assert _rows(sandbox.claims.db_path, "SELECT count(*) FROM claim WHERE ext_ref = 'conc'") \
        == [(1,)]


def test_the_legacy_claims_system_wants_the_number_as_it_stores_it(sandbox, client):
    person = next(p for p in load_people(FIXTURES / IDCARD_TRUTH) if p.legacy)
    body = {"POLICY_NO": person.policy_number, "INSURED_IDNO": person.id_number,
            "INSURED_NAME": person.name, "ACCIDENT_DT": "20250401", "CLAIM_AMT": "88.00"}
    url = f"{sandbox.claims.url}/claims"
    refused = client.post(url, json=body, headers={"Idempotency-Key": "legacy-1"})
    assert refused.status_code == 422
    assert "INSURED_IDNO" in json.dumps(refused.json())
    body["INSURED_IDNO"] = gb11643.to_15(person.id_number)
    assert client.post(url, json=body, headers={"Idempotency-Key": "legacy-1"}).status_code \
        == 201  # a refusal is not remembered under the key


def test_a_key_is_required(sandbox, client):
    assert client.post(f"{sandbox.core.url}/kyc-records", json=kyc()).status_code == 400


def test_fault_5xx_does_nothing(sandbox, client):
    sandbox.core.set_faults(Faults(error_rate=1.0))
    reply = client.post(f"{sandbox.core.url}/kyc-records", json=kyc(ref="f5"),
                        headers={"Idempotency-Key": "f5"})
    assert reply.status_code == 503
    assert _rows(sandbox.core.db_path, "SELECT count(*) FROM kyc_record WHERE source_ref='f5'") \
        == [(0,)]
    assert client.get(f"{sandbox.core.url}/health").status_code == 200  # never faulted


def test_fault_dropped_after_commit(sandbox, client):
    sandbox.core.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(httpx.TransportError):
        client.post(f"{sandbox.core.url}/kyc-records", json=kyc(ref="drop"),
                    headers={"Idempotency-Key": "drop"})
    assert _rows(sandbox.core.db_path, "SELECT count(*) FROM kyc_record WHERE "
                 "source_ref='drop'") == [(1,)], "committed before the connection dropped"
    sandbox.core.set_faults(None)
    again = client.post(f"{sandbox.core.url}/kyc-records", json=kyc(ref="drop"),
                        headers={"Idempotency-Key": "drop"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert sandbox.core.stats()["faults"]["drop"] >= 1


def test_fault_timeout_and_slow(sandbox):
    sandbox.core.set_faults(Faults(timeout_rate=1.0, timeout_seconds=1.0))
    with httpx.Client(timeout=0.3) as c, pytest.raises(httpx.TimeoutException):
        c.post(f"{sandbox.core.url}/kyc-records", json=kyc(ref="slowt"),
               headers={"Idempotency-Key": "slowt"})
    time.sleep(1.2)  # the server goes on after the client gave up, and commits
    assert _rows(sandbox.core.db_path, "SELECT count(*) FROM kyc_record WHERE "
                 "source_ref='slowt'") == [(1,)]
    sandbox.core.set_faults(Faults(slow_rate=1.0, slow_seconds=0.3))
    with httpx.Client(timeout=5) as c:
        reply = c.post(f"{sandbox.core.url}/kyc-records", json=kyc(ref="slowt"),
                       headers={"Idempotency-Key": "slowt"})
    assert reply.status_code == 201 and reply.elapsed.total_seconds() >= 0.3
    assert reply.headers.get("Idempotent-Replayed") == "true"


def test_fault_reject_is_the_same_for_the_same_key(sandbox, client):
    sandbox.core.set_faults(Faults(reject_rate=0.5))
    url = f"{sandbox.core.url}/kyc-records"
    codes = {}
    for i in range(20):
        codes[i] = client.post(url, json=kyc(ref=f"rj{i}"),
                               headers={"Idempotency-Key": f"rj{i}"}).status_code
    assert set(codes.values()) == {201, 422}
    for i, code in codes.items():
        if code == 422:
            assert client.post(url, json=kyc(ref=f"rj{i}"),
                               headers={"Idempotency-Key": f"rj{i}"}).status_code == 422


def test_faults_are_validated(sandbox, client):
    reply = client.put(f"{sandbox.core.url}/admin/faults",
                       json={"error_rate": 0.7, "drop_rate": 0.5})
    assert reply.status_code == 422


def test_inbound_lists_what_was_received(sandbox, client):
    items = []
    after = 0
    while True:
        page = client.get(f"{sandbox.core.url}/inbound", params={"after_id": after,
                                                                  "limit": 3}).json()
        items += page["items"]
        if page["next_after_id"] is None:
            break
        after = page["next_after_id"]
    keys = [i["idempotency_key"] for i in items]
    assert len(keys) == len(set(keys))
    count = _rows(sandbox.core.db_path, "SELECT count(*) FROM kyc_record WHERE "
                  "idempotency_key IS NOT NULL")[0][0]
    assert len(items) == count


def test_parallel_systems_are_independent(tmp_path):
    """Two sandboxes at once (as two test runs would): separate ports and databases."""
    with run_sandbox(tmp_path / "a") as a, run_sandbox(tmp_path / "b") as b:
        assert len({a.core.url, a.claims.url, b.core.url, b.claims.url}) == 4
        httpx.post(f"{a.core.url}/kyc-records", json=kyc(ref="ind"),
                   headers={"Idempotency-Key": "ind"})
        assert _rows(b.core.db_path, "SELECT count(*) FROM kyc_record") == [(0,)]
