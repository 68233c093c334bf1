"""Files encrypted at rest with the key ring (issue #17): originals, quarantined files, file
names, the payments drop and the reconciliation's exceptions.csv; rotation; and a scan of
every byte under the data folder, the store included, for planted personal data."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from backoffice import blobs, file_crypto
from backoffice.connectors.config import FileDropTarget
from backoffice.connectors.filedrop import (
    DropFileError,
    FileDropConnector,
    read_dropped,
)
from backoffice.crypto import (
    EncryptedColumnComparisonError,
    KeyRing,
    MissingKeyError,
    TamperedValueError,
    WrongKeyError,
    generate_key,
)
from backoffice.file_crypto import FileSet
from backoffice.intake import ingest_bytes, scan_inbox
from backoffice.settings import get_settings
from backoffice.store import Document, FieldValue, Status, make_engine, rotate_encryption
from domain.gb11643 import calc_check_digit

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
KEY_A, KEY_B = generate_key(), generate_key()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _id(body: str) -> str:
    return body + calc_check_digit(body)


# Planted personal data (made up). Each must never be found in clear under the data folder.
ID_PNG, NAME_PNG = _id("11010519491231002"), "张三丰"
ID_PDF, NAME_PDF, PHONE_PDF = _id("44030519880716521"), "欧阳娜娜", "13812345678"
ACCOUNT_PDF = "6222020200112233446"
ID_TXT, NAME_TXT, PHONE_TXT = _id("31010419900307451"), "王小明", "13900001111"
NAME_LINK = "赵六六"
ID_CLAIM, NAME_CLAIM, PHONE_CLAIM = _id("32010219751120003"), "李思思", "13700002222"
ACCOUNT_CLAIM = "6217004589407146192"
ID_RECON, NAME_RECON, PHONE_RECON = _id("51010719820405123"), "陈建国", "18600003333"


def _png(colour=(40, 50, 60), comment: str | None = None) -> bytes:
    """A PNG; ``comment`` goes into an iTXt chunk (UTF-8, uncompressed): plaintext bytes."""
    info = None
    if comment is not None:
        info = PngInfo()
        info.add_itxt("Comment", comment)
    buf = io.BytesIO()
    Image.new("RGB", (64, 40), colour).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _pdf_string(value: str) -> bytes:
    """A PDF literal string of UTF-16BE text (with its BOM), escaped."""
    raw = b"\xfe\xff" + value.encode("utf-16-be")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _text_pdf(lines: list[str], author: str) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (ASCII, in the content stream as it
    is) and whose Info dictionary names ``author`` (UTF-16BE): plaintext in the file."""
    content = ("BT /F1 14 Tf 72 760 Td 18 TL " + " ".join(f"({t}) '" for t in lines)
               + " ET").encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
         b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Author " + _pdf_string(author) + b" >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, xref))
    return bytes(out)


def _payments(directory: Path) -> FileDropConnector:
    """The payments target of targets.json, dropping into ``directory``."""
    return FileDropConnector("payments", FileDropTarget(directory=directory, mapping={
        "EXT_REF": {"from": "$document_ref"}, "POLICY_NO": "policy_number",
        "PAYEE_NAME": "account_name", "PAYEE_BANK": "bank_name",
        "PAYEE_ACCOUNT": "account_number", "AMOUNT": "claim_amount"}))


def _claim_message(key: str = "bo-7-abc:payments:v1"):
    from backoffice.connectors.base import Outgoing

    return Outgoing(key, "payments", 7, {
        "document_ref": "bo-7-abc", "doc_type": "claim_form",
        "fields": {"policy_number": "P2024000111", "account_name": NAME_CLAIM,
                   "bank_name": "中国工商银行", "account_number": ACCOUNT_CLAIM,
                   "claim_amount": "321.50", "insured_id_number": ID_CLAIM}})


def _masters(folder: Path) -> tuple[Path, Path]:
    """Two tiny customer masters: a match, a birth-date mismatch, one missing each side."""
    folder.mkdir(parents=True, exist_ok=True)
    core, claims = folder / "core.csv", folder / "claims.csv"
    matched = _id("11010119800101001")
    core.write_text("id_number,name,birth_date,phone\n"
                    f"{matched},周一,1980-01-01,13000000000\n"
                    f"{ID_RECON},{NAME_RECON},1982-04-05,{PHONE_RECON}\n"
                    f"{ID_TXT},{NAME_TXT},1990-03-07,{PHONE_TXT}\n", "utf-8")
    claims.write_text("insured_id,name,birth_date,phone,policy_count\n"
                      f"{matched},周一,1980-01-01,13000000000,1\n"
                      f"{ID_RECON},{NAME_RECON},1982-05-04,{PHONE_RECON},2\n"
                      f"{ID_CLAIM},{NAME_CLAIM},1975-11-20,{PHONE_CLAIM},1\n", "utf-8")
    return core, claims


def _cli(*args: str):
    from cli.main import app

    return CliRunner().invoke(app, list(args))


# --- the envelope -----------------------------------------------------------------------


def test_file_envelope_format_and_errors():
    ring = KeyRing.parse(f"new:{KEY_B}, old:{KEY_A}")
    secret = f"{NAME_PNG} {ID_PNG}".encode()
    context = file_crypto.original_context("a" * 64)
    sealed = file_crypto.seal(ring, secret, context)
    head = file_crypto.parse_header(sealed)
    assert sealed.startswith(file_crypto.MAGIC) and file_crypto.is_sealed(sealed)
    assert (head.version, head.kid, head.context) == (1, "new", context)
    assert ID_PNG.encode() not in sealed and NAME_PNG.encode() not in sealed
    assert file_crypto.open_sealed(ring, sealed, context) == secret
    assert file_crypto.open_sealed(ring, sealed, None) == secret  # context from the header
    assert file_crypto.seal(ring, secret, context) != sealed  # a fresh nonce each time
    # Plaintext (written before a key was set) reads as it is.
    assert file_crypto.unseal(secret, context, ring=ring) == secret

    errors = []
    with pytest.raises(TamperedValueError) as err:  # moved to another document's name
        file_crypto.open_sealed(ring, sealed, file_crypto.original_context("b" * 64))
    errors.append(err.value)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(TamperedValueError) as err:
        file_crypto.open_sealed(ring, bytes(flipped), context)
    errors.append(err.value)
    # The header is authenticated: another context written in does not decrypt.
    forged = sealed.replace(b"original/" + b"a" * 64, b"original/" + b"c" * 64)
    with pytest.raises(TamperedValueError) as err:
        file_crypto.open_sealed(ring, forged, None)
    errors.append(err.value)
    with pytest.raises(TamperedValueError) as err:
        file_crypto.open_sealed(ring, sealed[:-40], context)  # truncated
    errors.append(err.value)
    with pytest.raises(TamperedValueError) as err:
        file_crypto.open_sealed(ring, sealed[:20], context)  # header cut
    errors.append(err.value)
    with pytest.raises(MissingKeyError, match="'new'") as err:
        file_crypto.open_sealed(KeyRing.parse(f"old:{KEY_A}"), sealed, context)
    errors.append(err.value)
    with pytest.raises(WrongKeyError) as err:
        file_crypto.open_sealed(KeyRing.parse(f"new:{KEY_A}"), sealed, context)
    errors.append(err.value)
    with pytest.raises(MissingKeyError, match="no key is configured") as err:
        file_crypto.open_sealed(None, sealed, context)
    errors.append(err.value)
    for exc in errors:
        assert ID_PNG not in str(exc) and NAME_PNG not in str(exc) and KEY_A not in str(exc)


# --- originals, quarantined files, file names ---------------------------------------------


def test_local_originals_are_encrypted_and_read_back_through_blobs(engine, tmp_path, use_key):
    from worker_support import BlankRecognizer

    from backoffice.processing import process_document

    kwargs = {"documents_dir": tmp_path / "docs", "quarantine_dir": tmp_path / "q",
              "max_bytes": 10_000_000}
    before_png, secret_png = _png((1, 2, 3)), _png((4, 5, 6), comment=f"{NAME_PNG} {ID_PNG}")
    use_key(None)  # written before encryption was switched on
    with Session(engine) as session:
        ingest_bytes(session, before_png, "before.png", **kwargs)
        session.commit()
    use_key(f"k1:{KEY_A}")
    with Session(engine) as session:
        ingest_bytes(session, secret_png, f"{NAME_PNG}_身份证.png", **kwargs)
        session.commit()
        docs = {d.sha256: d for d in session.exec(select(Document))}
    plain_sha, secret_sha = (hashlib.sha256(d).hexdigest() for d in (before_png, secret_png))
    plain_ref, secret_ref = docs[plain_sha].stored_path, docs[secret_sha].stored_path
    assert Path(secret_ref).name == f"{secret_sha}.png"  # named by the plaintext's hash
    assert Path(plain_ref).read_bytes() == before_png
    raw = Path(secret_ref).read_bytes()
    assert file_crypto.is_sealed(raw) and PNG_SIGNATURE not in raw
    assert ID_PNG.encode() not in raw and NAME_PNG.encode() not in raw
    assert file_crypto.parse_header(raw).context == f"original/{secret_sha}"
    assert stat.S_IMODE(os.stat(secret_ref).st_mode) == 0o444  # still read-only
    assert blobs.read(secret_ref) == secret_png and blobs.read(plain_ref) == before_png

    # Processing reads it through blobs.read (a blank reader: no OCR).
    assert process_document(engine, docs[secret_sha].id, BlankRecognizer(),
                            get_settings()) == [docs[secret_sha].id]

    # Altered, moved over another document's name, or no/another key: an OSError (the
    # machine's problem: retried), with nothing of the file in its message.
    altered = tmp_path / "altered" / secret_sha[:2] / f"{secret_sha}.png"
    altered.parent.mkdir(parents=True)
    altered.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    moved = tmp_path / "moved" / "ab" / f"{plain_sha}.png"
    moved.parent.mkdir(parents=True)
    moved.write_bytes(raw)
    failures = []
    for ref in (str(altered), str(moved)):
        with pytest.raises(blobs.BlobError) as err:
            blobs.read(ref)
        failures.append(err.value)
    assert "altered" in str(failures[0]) and "moved" in str(failures[1])
    use_key(None)
    with pytest.raises(OSError, match="no key is configured") as err:
        blobs.read(secret_ref)
    failures.append(err.value)
    use_key(f"k1:{KEY_B}")
    with pytest.raises(blobs.BlobError) as err:
        blobs.read(secret_ref)
    assert isinstance(err.value.__cause__, WrongKeyError)
    failures.append(err.value)
    for exc in failures:
        assert ID_PNG not in str(exc) and NAME_PNG not in str(exc)


def test_quarantined_files_and_file_names_are_encrypted(engine, tmp_path, use_key):
    use_key(f"k1:{KEY_A}")
    inbox, quarantine = tmp_path / "inbox", tmp_path / "q"
    inbox.mkdir()
    note = f"申请人 {NAME_TXT} 身份证 {ID_TXT} 电话 {PHONE_TXT}"
    (inbox / f"{NAME_TXT}.txt").write_bytes(note.encode("gbk"))
    (tmp_path / "outside.png").write_bytes(_png())
    (inbox / f"{NAME_LINK}_身份证.png").symlink_to(tmp_path / "outside.png")  # refused
    with Session(engine) as session:
        result = scan_inbox(session, inbox, documents_dir=tmp_path / "docs",
                            quarantine_dir=quarantine, max_bytes=10**6)
    assert len(result.quarantined) == 2
    bins = sorted(quarantine.glob("*.bin"))
    assert len(bins) == 2
    for path in bins:
        raw = path.read_bytes()
        assert file_crypto.parse_header(raw).context == f"quarantine/{path.stem}"
        for secret in (NAME_TXT, ID_TXT, PHONE_TXT, NAME_LINK):
            for encoding in ("utf-8", "gbk"):
                assert secret.encode(encoding) not in raw
    for reason in quarantine.glob("*.reason.json"):  # no file name with a key
        about = json.loads(reason.read_text())
        assert "file" not in about and about["reason"]
        assert NAME_TXT not in reason.read_text() and NAME_LINK not in reason.read_text()

    # The file names are encrypted in the store, read back in clear, and not searchable.
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT original_name FROM document"))]
    assert all(n.startswith("enc1:k1:") for n in names) and len(names) == 2
    with Session(engine) as session:
        assert sorted(d.original_name for d in session.exec(select(Document))) == sorted(
            [f"{NAME_TXT}.txt", f"{NAME_LINK}_身份证.png"])
    with pytest.raises(EncryptedColumnComparisonError, match="document.original_name"):
        select(Document).where(Document.original_name == f"{NAME_TXT}.txt")
    with pytest.raises(EncryptedColumnComparisonError):
        select(Document).order_by(Document.original_name.desc())

    # An operator reads a quarantined file back with the key ring.
    txt_sha = hashlib.sha256(note.encode("gbk")).hexdigest()
    shown = _cli("keys", "decrypt-file", str(quarantine / f"{txt_sha}.bin"))
    assert shown.exit_code == 0, shown.output
    assert shown.stdout_bytes == note.encode("gbk")
    out = tmp_path / "plain.txt"
    written = _cli("keys", "decrypt-file", str(quarantine / f"{txt_sha}.bin"), "--out", str(out))
    assert written.exit_code == 0 and out.read_bytes() == note.encode("gbk")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert _cli("keys", "decrypt-file", str(quarantine / f"{txt_sha}.bin"), "--out",
                str(out)).exit_code == 2  # never overwritten without --force
    use_key(f"k1:{KEY_B}")
    refused = _cli("keys", "decrypt-file", str(quarantine / f"{txt_sha}.bin"))
    assert refused.exit_code == 2 and "is not the key" in refused.output
    assert NAME_TXT not in refused.output and ID_TXT not in refused.output


# --- exported files ----------------------------------------------------------------------


def test_payments_drop_is_encrypted_and_its_manifest_checks_the_plaintext(tmp_path, use_key):
    use_key(f"k1:{KEY_A}")
    drop = _payments(tmp_path / "drop")
    message = _claim_message()
    result = drop.post(message)
    csv_path = drop.directory / f"{result.remote_id}.csv"
    manifest_path = drop.directory / f"{result.remote_id}.manifest.json"
    raw, manifest = csv_path.read_bytes(), json.loads(manifest_path.read_text())
    assert file_crypto.parse_header(raw).context == f"filedrop/{csv_path.name}"
    assert ACCOUNT_CLAIM.encode() not in raw and NAME_CLAIM.encode() not in raw
    assert ACCOUNT_CLAIM not in manifest_path.read_text()
    # The consumer (the payments system) decrypts with the shared key ring and checks the
    # manifest's SHA-256 against the plaintext it loads.
    taken = read_dropped(manifest_path, ring=KeyRing.parse(f"k1:{KEY_A}"))
    assert taken.encrypted and taken.header[:2] == ["EXT_REF", "POLICY_NO"]
    assert taken.rows == [["bo-7-abc", "P2024000111", NAME_CLAIM, "中国工商银行",
                           ACCOUNT_CLAIM, "321.50"]]
    plain = drop.render(dict(zip(taken.header, taken.rows[0], strict=True)))
    assert manifest["sha256"] == hashlib.sha256(plain).hexdigest()
    assert manifest["bytes"] == len(plain)
    assert drop.post(message).replayed
    assert {h.key: h.problem for h in drop.held()} == {message.key: None}
    # An operator's look at it.
    shown = _cli("keys", "decrypt-file", str(csv_path))
    assert shown.exit_code == 0 and shown.stdout_bytes == plain
    # Without the key, or altered: the consumer refuses it, held() names the problem.
    with pytest.raises(DropFileError, match="cannot be decrypted"):
        read_dropped(manifest_path, ring=KeyRing.parse(f"k1:{KEY_B}"))
    os.chmod(csv_path, 0o644)
    csv_path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    [held] = drop.held()
    assert "cannot be decrypted" in held.problem and ACCOUNT_CLAIM not in held.problem
    # Without a key the drop is what it always was.
    use_key(None)
    plain_drop = _payments(tmp_path / "plain-drop")
    again = plain_drop.post(message)
    assert (plain_drop.directory / f"{again.remote_id}.csv").read_bytes() == plain
    assert not read_dropped(plain_drop.directory / f"{again.remote_id}.manifest.json").encrypted


def test_exceptions_csv_is_encrypted_and_read_with_the_key(tmp_path, use_key):
    import pandas as pd

    from backoffice.reconcile_job import read_exceptions, reconcile_files

    core, claims = _masters(tmp_path / "masters")
    use_key(f"k1:{KEY_A}")
    report = reconcile_files(core, claims, tmp_path / "out")
    raw = report.exceptions_path.read_bytes()
    assert file_crypto.parse_header(raw).context == "reconcile/exceptions.csv"
    assert stat.S_IMODE(report.exceptions_path.stat().st_mode) == 0o600
    for secret in (ID_RECON, NAME_RECON, PHONE_RECON, ID_TXT, ID_CLAIM):
        assert secret.encode() not in raw and secret not in report.summary_path.read_text()
    frame = pd.read_csv(io.BytesIO(read_exceptions(report.exceptions_path)), dtype=str)
    assert len(frame) == report.summary["exception_lines"] == 3
    assert ID_RECON in set(frame["core_id_number"])
    assert not [p for p in report.out_dir.iterdir() if p.name.endswith(".tmp")]
    use_key(None)  # without a key: the plain CSV, as before
    plain = reconcile_files(core, claims, tmp_path / "plain")
    assert plain.exceptions_path.read_bytes() == read_exceptions(plain.exceptions_path)
    assert ID_RECON.encode() in plain.exceptions_path.read_bytes()


# --- rotation ----------------------------------------------------------------------------


def _kid(path: Path) -> str:
    raw = path.read_bytes()
    return file_crypto.parse_header(raw).kid if file_crypto.is_sealed(raw) else "(plaintext)"


def test_rotation_reencrypts_every_file_under_the_new_key(engine, tmp_path, use_key):
    data = tmp_path / "data"
    docs, quarantine = data / "documents", data / "quarantine"
    drop_dir, out = data / "drop" / "payments", data / "reconcile" / "run1"
    kwargs = {"documents_dir": docs, "quarantine_dir": quarantine, "max_bytes": 10_000_000}
    core, claims = _masters(tmp_path / "masters")
    from backoffice.reconcile_job import read_exceptions, reconcile_files

    def write_all(tag: int) -> None:
        with Session(engine) as session:
            ingest_bytes(session, _png((tag, 0, 0), comment=ID_PNG), f"{tag}.png", **kwargs)
            ingest_bytes(session, f"{ID_TXT} {tag}".encode(), f"{tag}.txt", **kwargs)
            session.commit()
        _payments(drop_dir).post(_claim_message(f"bo-{tag}-abc:payments:v1"))
        reconcile_files(core, claims, out / str(tag))

    use_key(None)
    write_all(1)  # before encryption was switched on
    use_key(f"k1:{KEY_A}")
    write_all(2)
    use_key(f"k2:{KEY_B},k1:{KEY_A}")  # a new primary; the old key still decrypts
    write_all(3)
    files = sorted(p for p in data.rglob("*") if p.is_file() and not p.name.endswith(".json"))
    assert {_kid(p) for p in files} == {"(plaintext)", "k1", "k2"}
    manifests = {p: p.read_bytes() for p in drop_dir.glob("*.manifest.json")}
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in files}
    originals = {p: blobs.read(str(p)) for p in docs.rglob("*.png")}
    assert len(originals) == 3 and all(m == 0o444 for p, m in modes.items() if p in originals)
    os.chmod(drop_dir, 0o555)  # a read-only folder is opened for the swap and put back

    sets = [FileSet("original", docs), FileSet("quarantine", quarantine),
            FileSet("filedrop", drop_dir), FileSet("export", data / "reconcile")]
    try:
        report = rotate_encryption(engine, files=sets)
    finally:
        os.chmod(drop_dir, 0o755)
    assert stat.S_IMODE(drop_dir.stat().st_mode) == 0o755
    assert "files_failed" not in report
    assert report["rewritten"]["files:original"] == 2  # plaintext and k1; k2 left alone
    assert report["rewritten"]["files:quarantine"] == 2
    assert report["rewritten"]["files:filedrop"] == 2
    assert report["rewritten"]["files:export"] == 2
    assert {_kid(p) for p in files} == {"k2"}
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in files} == modes  # permissions kept
    assert {p: p.read_bytes() for p in drop_dir.glob("*.manifest.json")} == manifests
    assert not [p for p in data.rglob("*") if p.name.endswith(".tmp")]
    again = rotate_encryption(engine, files=sets)
    assert sum(v for k, v in again["rewritten"].items() if k.startswith("files:")) == 0

    use_key(f"k2:{KEY_B}")  # the old key removed: everything still reads
    assert {p: blobs.read(str(p)) for p in originals} == originals
    ring = KeyRing.parse(f"k2:{KEY_B}")
    for manifest in drop_dir.glob("*.manifest.json"):
        assert read_dropped(manifest, ring=ring).rows[0][4] == ACCOUNT_CLAIM
    for run in out.iterdir():
        assert ID_RECON.encode() in read_exceptions(run / "exceptions.csv")
    for path in quarantine.glob("*.bin"):
        assert ID_TXT.encode() in file_crypto.read_file(path, f"quarantine/{path.stem}")

    # A file that cannot be decrypted is reported and left; the rest goes on.
    use_key(f"k3:{KEY_A},k2:{KEY_B}")
    broken = next(iter(quarantine.glob("*.bin")))
    raw = broken.read_bytes()
    broken.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    report = rotate_encryption(engine, files=sets)
    assert [f["path"] for f in report["files_failed"]] == [str(broken)]
    assert "fails authentication" in report["files_failed"][0]["error"]
    assert {_kid(p) for p in files if p != broken} == {"k3"}


def test_keys_rotate_cli_covers_the_data_folder_and_drop_folders(tmp_path, monkeypatch,
                                                                   use_key):
    data, drop_root, extra = tmp_path / "data", tmp_path / "drop", tmp_path / "elsewhere"
    monkeypatch.setenv("BACKOFFICE_DATA_DIR", str(data))
    monkeypatch.setenv("BACKOFFICE_DROP_DIR", str(drop_root))
    monkeypatch.delenv("BACKOFFICE_DATABASE_URL", raising=False)
    monkeypatch.delenv("BACKOFFICE_TARGETS_FILE", raising=False)
    from backoffice.reconcile_job import reconcile_files

    use_key(f"k1:{KEY_A}")
    data.mkdir()
    settings = get_settings()
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        ingest_bytes(session, _png((9, 9, 9)), "x.png", documents_dir=settings.documents_dir,
                     quarantine_dir=settings.quarantine_dir, max_bytes=10**6)
        session.commit()
    engine.dispose()
    _payments(drop_root / "payments").post(_claim_message())
    core, claims = _masters(tmp_path / "masters")
    reconcile_files(core, claims, data / "reconcile" / "r1")
    reconcile_files(core, claims, extra / "r2")
    use_key(f"k2:{KEY_B},k1:{KEY_A}")
    result = _cli("keys", "rotate", "--path", str(extra))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rewritten"]["files:original"] == 1
    assert report["rewritten"]["files:filedrop"] == 1
    assert report["rewritten"]["files:export"] == 2
    assert report["rewritten"]["document.original_name"] == 1
    rotated = [p for root in (data, drop_root, extra) for p in root.rglob("*")
               if p.is_file() and file_crypto.is_sealed(p.read_bytes())]
    assert len(rotated) == 4 and {_kid(p) for p in rotated} == {"k2"}


# --- the scan ----------------------------------------------------------------------------


class PlantedReader:
    """A reader that "sees" an ID card front's text lines (no OCR engine: cheap)."""

    def __init__(self, name: str, number: str, address: str) -> None:
        self.lines = [("姓名", name), ("性别 女  民族 汉", None),
                      ("出生 1942年1月3日", None), ("住址", address),
                      ("公民身份号码", number)]

    def recognize(self, image):
        from domain.models import OcrLine

        h, w = image.shape[:2]
        out = []
        for i, (label, value) in enumerate(self.lines):
            y = int(h * (0.12 + 0.16 * i))
            text_ = label if value is None else f"{label}{value}"
            x0, x1 = int(w * 0.08), int(w * 0.9)
            out.append(OcrLine(text=text_, confidence=0.99,
                               polygon=[[x0, y], [x1, y], [x1, y + 30], [x0, y + 30]]))
        return out


def _forms(value: str) -> dict[str, bytes]:
    """The byte forms a value could be stored in."""
    forms = {"utf-8": value.encode("utf-8"), "utf-16-le": value.encode("utf-16-le"),
             "utf-16-be": value.encode("utf-16-be"),
             "json-escaped": json.dumps(value)[1:-1].encode("ascii")}
    try:
        forms["gbk"] = value.encode("gbk")
    except UnicodeEncodeError:
        pass
    return forms


def _scan_scenario(data: Path, tmp_path: Path, monkeypatch) -> list[str]:
    """Intake (originals, quarantine), a cheap processing, the outbox to the payments drop
    and a reconciliation with exceptions; then every byte under the data folder, the
    SQLite store and its WAL included, searched for the planted values: what was found
    where, in which form."""
    import json as _json

    from backoffice.outbox import DrainPolicy, approve_document, drain_once
    from backoffice.processing import process_document
    from backoffice.reconcile_job import reconcile_files

    monkeypatch.setenv("BACKOFFICE_DATA_DIR", str(data))
    monkeypatch.setenv("BACKOFFICE_DROP_DIR", str(data / "drop"))
    monkeypatch.delenv("BACKOFFICE_DATABASE_URL", raising=False)
    data.mkdir()
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.database_url)

    # A real fixture (an ID card front) with the values its card shows, a PNG with the
    # holder in its metadata, a PDF with a text layer, a text file (quarantined) and a
    # symbolic link leading out of the inbox (quarantined with its name).
    truth = next(_json.loads(line) for line in
                 (FIXTURES / "idcards" / "truth.jsonl").read_text().splitlines()
                 if _json.loads(line)["file"] == "clean/s2026_0000_front.jpg")
    person = truth["fields"]
    inbox = data / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "s2026_0000_front.jpg").write_bytes(
        (FIXTURES / "idcards" / truth["file"]).read_bytes())
    (inbox / f"{NAME_PNG}_身份证.png").write_bytes(
        _png((7, 7, 7), comment=f"{NAME_PNG} {ID_PNG}"))
    (inbox / "claim.pdf").write_bytes(_text_pdf(
        [f"Insured ID {ID_PDF}", f"Phone {PHONE_PDF}", f"Account {ACCOUNT_PDF}"],
        author=NAME_PDF))
    (inbox / "note.txt").write_bytes(
        f"申请人 {NAME_TXT} 身份证 {ID_TXT} 电话 {PHONE_TXT}".encode())
    (tmp_path / "outside.png").write_bytes(_png())
    (inbox / f"{NAME_LINK}.png").symlink_to(tmp_path / "outside.png")
    with Session(engine) as session:
        intake = scan_inbox(session, inbox, documents_dir=settings.documents_dir,
                            quarantine_dir=settings.quarantine_dir,
                            max_bytes=settings.max_file_bytes)
    assert len(intake.received) == 3 and len(intake.quarantined) == 2

    # Processing (a planted reader instead of OCR) reads the originals back decrypted.
    with Session(engine) as session:
        by_name = {d.original_name: d.id for d in session.exec(select(Document))}
    reader = PlantedReader(person["name"], person["id_number"], person["address"])
    for name in ("s2026_0000_front.jpg", f"{NAME_PNG}_身份证.png", "claim.pdf"):
        assert process_document(engine, by_name[name], reader, settings)
    with Session(engine) as session:
        statuses = {d.original_name: d.status for d in session.exec(select(Document))}
    assert statuses["s2026_0000_front.jpg"] is Status.APPROVED  # read back, and read right
    assert statuses["claim.pdf"] in (Status.APPROVED, Status.IN_REVIEW)  # its page rendered
    # The review's picture of a page is drawn from the decrypted original too.
    from backoffice.review import review_image, review_item

    in_review = by_name[f"{NAME_PNG}_身份证.png"]
    assert statuses[f"{NAME_PNG}_身份证.png"] is Status.IN_REVIEW
    picture = review_image(review_item(engine, in_review, settings), settings, engine)
    assert picture is not None and picture.startswith(b"\xff\xd8")

    # An approved claim posted to the payments drop through the outbox.
    with Session(engine) as session:
        doc = Document(sha256="c" * 64, original_name=f"{NAME_CLAIM}理赔.jpg",
                       stored_path="/nowhere", status=Status.PROCESSED, doc_type="claim_form")
        session.add(doc)
        session.flush()
        for name, value in {"policy_number": "P2024000111", "insured_name": NAME_CLAIM,
                            "insured_id_number": ID_CLAIM, "phone": PHONE_CLAIM,
                            "account_name": NAME_CLAIM, "bank_name": "中国工商银行",
                            "account_number": ACCOUNT_CLAIM, "claim_amount": "321.50"}.items():
            session.add(FieldValue(document_id=doc.id, name=name, value=value, raw=value,
                                   confidence=0.99))
        approve_document(session, doc, targets=["payments"])
        session.commit()
    drop = _payments(data / "drop" / "payments")
    assert drain_once(engine, {"payments": drop}, policy=DrainPolicy()).posted == 1

    # The reconciliation's report, in the flow's default place.
    core, claims = _masters(tmp_path / "masters")  # the banks' masters: not our files
    report = reconcile_files(core, claims, data / "reconcile" / "run")
    assert report.summary["exception_lines"] == 3
    engine.dispose()

    secrets = {
        "fixture id_number": person["id_number"], "fixture name": person["name"],
        "fixture address": person["address"][:8],
        "png id": ID_PNG, "png name": NAME_PNG,
        "pdf id": ID_PDF, "pdf name": NAME_PDF, "pdf phone": PHONE_PDF,
        "pdf account": ACCOUNT_PDF,
        "txt id": ID_TXT, "txt name": NAME_TXT, "txt phone": PHONE_TXT,
        "link name": NAME_LINK,
        "claim id": ID_CLAIM, "claim name": NAME_CLAIM, "claim phone": PHONE_CLAIM,
        "claim account": ACCOUNT_CLAIM,
        "recon id": ID_RECON, "recon name": NAME_RECON, "recon phone": PHONE_RECON,
    }
    found, scanned = [], 0
    for path in sorted(p for p in data.rglob("*") if p.is_file() and not p.is_symlink()):
        blob = path.read_bytes()
        scanned += len(blob)
        for label, value in secrets.items():
            for form, needle in _forms(value).items():
                if needle in blob:
                    found.append(f"{path.relative_to(data)}: {label} ({form})")
    assert scanned > 0 and (data / "backoffice.db").exists()
    assert {p.relative_to(data).parts[0] for p in data.rglob("*") if p.is_file()} >= {
        "backoffice.db", "documents", "quarantine", "drop", "reconcile"}
    return found


def test_with_a_key_nothing_under_the_data_folder_is_in_clear(tmp_path, monkeypatch, use_key):
    use_key(f"k1:{KEY_A}")
    found = _scan_scenario(tmp_path / "data", tmp_path, monkeypatch)
    assert found == [], "\n".join(found)


def test_the_scan_finds_the_planted_values_without_a_key(tmp_path, monkeypatch, use_key):
    """The scan's control: the same run without a key leaves them in clear everywhere."""
    use_key(None)
    found = _scan_scenario(tmp_path / "data", tmp_path, monkeypatch)
    where = {line.split(":", 1)[0].split("/", 1)[0] for line in found}
    assert {"backoffice.db", "documents", "quarantine", "drop", "reconcile"} <= where, found
    for label in ("pdf id", "pdf name (utf-16-be)", "png name (utf-8)", "txt id",
                  "link name", "claim account", "recon id", "fixture name"):
        assert any(label in line for line in found), label


def test_originals_under_an_fsspec_url_are_encrypted_too(tmp_path, use_key):
    from backoffice.blobs import UrlStorage

    use_key(f"k1:{KEY_A}")
    storage = UrlStorage((tmp_path / "shared").as_uri() + "/")
    data = _png(comment=ID_TXT)
    sha = hashlib.sha256(data).hexdigest()
    ref = storage.put(None, data, sha, "png")
    raw = (tmp_path / "shared" / sha[:2] / f"{sha}.png").read_bytes()
    assert file_crypto.is_sealed(raw) and ID_TXT.encode() not in raw
    assert blobs.read(ref) == data
    use_key(f"k2:{KEY_B}")  # the key it was sealed with is gone: a clear error
    with pytest.raises(blobs.BlobError, match="k1"):
        blobs.read(ref)
