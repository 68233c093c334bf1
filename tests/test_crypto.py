"""Encryption at rest of personal-data columns: raw bytes, reads, rotation, wrong keys."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from backoffice.audit import AuditEvent, append_audit, verify_audit_chain
from backoffice.crypto import (
    EncryptedColumnComparisonError,
    KeyConfigError,
    KeyRing,
    MissingKeyError,
    TamperedValueError,
    WrongKeyError,
    generate_key,
)
from backoffice.settings import get_settings
from backoffice.store import Document, FieldValue, Status, rotate_encryption

ID = "11010519491231002X"
NAME = "张三丰"
ADDRESS = "北京市朝阳区幸福路88号"
KEY_A, KEY_B = generate_key(), generate_key()
# (fragments long enough that no random hex hash holds them by chance: "0021" was in
# one run of five, in the audit chain's hashes)
SECRETS = (ID, NAME, ADDRESS, "幸福路", "19491231")


def _write(engine, sha: str = "a" * 64) -> int:
    """A processed-and-approved ID card with its fields, audit events and outbox message."""
    from backoffice.outbox import approve_document

    with Session(engine) as session:
        doc = Document(sha256=sha, original_name="card.jpg", stored_path="/x",
                       status=Status.PROCESSED, doc_type="id_card_front",
                       ocr_lines=[{"text": f"姓名{NAME}", "confidence": 0.99},
                                  {"text": f"住址{ADDRESS}", "confidence": 0.97},
                                  {"text": f"公民身份号码{ID}", "confidence": 0.98}])
        session.add(doc)
        session.flush()
        session.add(FieldValue(document_id=doc.id, name="name", value=NAME, raw=NAME,
                               confidence=0.99))
        session.add(FieldValue(document_id=doc.id, name="id_number", value=ID,
                               raw=ID.replace("0", "O"), reviewed_value=ID, confidence=0.9))
        session.add(FieldValue(document_id=doc.id, name="address", value=ADDRESS,
                               confidence=0.97))
        session.flush()
        append_audit(session, "review.corrected", document_id=doc.id, actor="operator",
                     data={"field": "id_number", "before": ID[:-1] + "9", "after": ID})
        approve_document(session, doc, targets=["core"])
        session.commit()
        return doc.id


def _raw_dump(engine) -> str:
    """Every row of the personal tables as the database holds them (no column types)."""
    out = []
    with engine.connect() as conn:
        for table in ("document", "fieldvalue", "auditevent", "outbox_message"):
            out += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(out)


def _read(engine, doc_id: int) -> dict:
    from backoffice.outbox import OutboxMessage

    with Session(engine) as session:
        fields = {f.name: (f.value, f.raw, f.reviewed_value) for f in session.exec(
            select(FieldValue).where(FieldValue.document_id == doc_id))}
        doc = session.get(Document, doc_id)
        payload = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id == doc_id)).one().payload
        audit = [e.data for e in session.exec(select(AuditEvent).where(
            AuditEvent.action == "review.corrected", AuditEvent.document_id == doc_id))]
        return {"fields": fields, "lines": doc.ocr_lines, "payload": payload, "audit": audit,
                "chain": verify_audit_chain(session)}


def test_keyring_envelope_and_errors():
    ring = KeyRing.parse(f"new:{KEY_B}, old:{KEY_A}")
    assert ring.primary == "new" and list(ring.keys) == ["new", "old"]
    sealed = ring.encrypt(ID.encode(), "fieldvalue.value")
    version, kid, check, body = sealed.split(":")
    assert (version, kid, len(check)) == ("enc1", "new", 8) and ID not in sealed
    assert ring.decrypt(sealed, "fieldvalue.value") == ID.encode()
    assert ring.encrypt(ID.encode(), "fieldvalue.value") != sealed  # a fresh nonce each time
    with pytest.raises(TamperedValueError, match="fieldvalue.raw"):
        ring.decrypt(sealed, "fieldvalue.raw")  # copied into another column
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    flipped = ":".join([version, kid, check,
                        base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")])
    with pytest.raises(TamperedValueError):
        ring.decrypt(flipped, "fieldvalue.value")
    with pytest.raises(MissingKeyError, match="'new'"):
        KeyRing.parse(f"old:{KEY_A}").decrypt(sealed, "fieldvalue.value")
    with pytest.raises(WrongKeyError):
        KeyRing.parse(f"new:{KEY_A}").decrypt(sealed, "fieldvalue.value")
    bare = KeyRing.parse(KEY_A)
    assert bare.primary.startswith("k") and len(bare.primary) == 9
    for bad in ("", "k1:not-base64!!", f"k1:{base64.b64encode(b'short').decode()}",
                f"k1:{KEY_A},k1:{KEY_B}"):
        with pytest.raises(KeyConfigError) as err:
            KeyRing.parse(bad)
        assert KEY_A not in str(err.value) and KEY_B not in str(err.value)


def test_with_a_key_the_database_holds_no_plaintext(engine, use_key):
    use_key(f"k1:{KEY_A}")
    doc_id = _write(engine)
    dump = _raw_dump(engine)
    for secret in SECRETS:
        assert secret not in dump
    assert dump.count("enc1:k1:") >= 9  # 3 fields x value/raw/reviewed, lines, payload, audit
    got = _read(engine, doc_id)
    assert got["fields"]["id_number"] == (ID, ID.replace("0", "O"), ID)
    assert got["fields"]["name"][0] == NAME and got["lines"][1]["text"] == f"住址{ADDRESS}"
    assert got["payload"]["fields"]["id_number"] == ID
    assert got["audit"] == [{"field": "id_number", "before": ID[:-1] + "9", "after": ID}]
    assert got["chain"] == []  # the hash covers the plaintext
    # The drain claims messages with UPDATE ... RETURNING: decrypted there too.
    from backoffice.outbox import DrainPolicy, utcnow
    from backoffice.outbox.drain import _claim

    (claimed,) = _claim(engine, "core", "t", 10, utcnow(), DrainPolicy())
    assert claimed.payload["fields"]["name"] == NAME


def test_encryption_off_stores_plaintext_as_before(engine, use_key):
    use_key(None)
    doc_id = _write(engine)
    dump = _raw_dump(engine)
    assert ID in dump and NAME in dump and "enc1:" not in dump
    assert _read(engine, doc_id)["fields"]["name"][0] == NAME


def test_rotation_end_to_end(engine, use_key):
    use_key(None)
    legacy = _write(engine, sha="1" * 64)  # written before encryption was switched on
    use_key(f"k1:{KEY_A}")
    first = _write(engine, sha="2" * 64)
    use_key(f"k2:{KEY_B},k1:{KEY_A}")  # new primary; the old key still decrypts
    second = _write(engine, sha="3" * 64)
    dump = _raw_dump(engine)
    assert "enc1:k1:" in dump and "enc1:k2:" in dump and ID in dump  # legacy plaintext
    assert _read(engine, first)["fields"]["name"][0] == NAME
    report = rotate_encryption(engine, batch_size=4)  # small batches: several rounds
    assert report["primary"] == "k2" and report["found_under"]["k1"] >= 9
    assert report["found_under"]["(plaintext)"] >= 9 and sum(report["rewritten"].values()) > 0
    dump = _raw_dump(engine)
    assert "enc1:k1:" not in dump and all(s not in dump for s in SECRETS)
    again = rotate_encryption(engine)
    assert sum(again["rewritten"].values()) == 0  # nothing left to do
    use_key(f"k2:{KEY_B}")  # the old key removed
    for doc_id in (legacy, first, second):
        got = _read(engine, doc_id)
        assert got["fields"]["id_number"][0] == ID and got["chain"] == []


def test_missing_or_wrong_key_is_a_clear_error_without_values(engine, use_key):
    use_key(f"k1:{KEY_A}")
    doc_id = _write(engine)
    use_key(None)
    with pytest.raises(MissingKeyError) as err:
        _read(engine, doc_id)
    assert "no key is configured" in str(err.value)
    use_key(f"k2:{KEY_B}")
    with pytest.raises(MissingKeyError) as err:
        _read(engine, doc_id)
    assert "'k1'" in str(err.value) and "BACKOFFICE_ENCRYPTION_KEY" in str(err.value)
    use_key(f"k1:{KEY_B}")
    with pytest.raises(WrongKeyError) as err:
        _read(engine, doc_id)
    for exc_text in (str(err.value), repr(err.value)):
        assert all(s not in exc_text for s in SECRETS) and KEY_A not in exc_text


def test_altered_audit_ciphertext_is_named_by_verify(engine, use_key):
    use_key(f"k1:{KEY_A}")
    _write(engine)
    with Session(engine) as session:
        target = session.exec(select(AuditEvent).where(
            AuditEvent.action == "review.corrected")).one().id
    with engine.begin() as conn:
        # Another event's ciphertext moved in: decrypts under the key, fails the hash.
        conn.execute(text("UPDATE auditevent SET data = (SELECT data FROM auditevent WHERE "
                          "id = :o) WHERE id = :i"), {"o": target + 1, "i": target})
    with Session(engine) as session:
        assert any(p.startswith(f"event {target} ") and "content altered" in p
                   for p in verify_audit_chain(session))


def test_encrypted_columns_refuse_sql_comparison(use_key):
    use_key(None)
    with pytest.raises(EncryptedColumnComparisonError, match="fieldvalue.value"):
        select(FieldValue).where(FieldValue.value == ID)
    with pytest.raises(EncryptedColumnComparisonError):
        select(FieldValue).where(FieldValue.reviewed_value.in_([ID]))
    select(FieldValue).where(FieldValue.reviewed_value.is_(None))  # allowed
    select(FieldValue).where(FieldValue.value != None)


def test_keys_cli_generate_show_rotate(tmp_path, monkeypatch, use_key):
    from backoffice.runtime import db_engine
    from cli.main import app

    runner = CliRunner()
    generated = runner.invoke(app, ["keys", "generate", "--kid", "k9"]).stdout.strip()
    kid, key = generated.split(":")
    assert kid == "k9" and len(base64.b64decode(key)) == 32
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# primary first\nk2:{KEY_B}\nk1:{KEY_A}\n")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", url)
    # `keys rotate` re-encrypts the files of the data and drop folders too: this test's own.
    monkeypatch.setenv("BACKOFFICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BACKOFFICE_DROP_DIR", str(tmp_path / "drop"))
    use_key(f"k1:{KEY_A}")
    _write(db_engine(url))
    use_key(None)
    monkeypatch.setenv("BACKOFFICE_ENCRYPTION_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    shown = runner.invoke(app, ["keys", "show"])
    assert "k2" in shown.stdout and KEY_B not in shown.stdout
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["primary"] == "k2" and report["rewritten"]["fieldvalue.value"] == 3
    assert "enc1:k1:" not in _raw_dump(db_engine(url))
    get_settings.cache_clear()
