"""Original files on every host (BACKOFFICE_DOCUMENT_STORAGE): local, store, fsspec URL.

Each mode: a file taken in on one host (its own data folder) is read and processed on
another (another data folder, the same database or the same URL).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text
from sqlmodel import Session, select
from worker_support import BlankRecognizer, write_tiny_documents

import backoffice.outbox  # noqa: F401  (the outbox table: an approval writes to it)
from backoffice import blobs
from backoffice.blobs import (
    BlobError,
    BlobNotFoundError,
    StorageConfigError,
    StoreStorage,
    UrlStorage,
    storage_for,
)
from backoffice.crypto import generate_key
from backoffice.intake import IntakeResult, _ingest_committed, ingest_bytes, scan_inbox
from backoffice.processing import process_document
from backoffice.review import review_image, review_item
from backoffice.settings import Settings
from backoffice.store import Document, DocumentBlob, Status, make_engine, rotate_encryption

KEY_A, KEY_B = generate_key(), generate_key()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png(colour=(40, 50, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


@contextlib.contextmanager
def _database(kind: str, tmp_path: Path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    from conftest import PG_ADMIN_URL
    from outbox_support import fresh_pg_database

    with fresh_pg_database(PG_ADMIN_URL) as url:
        yield url


def _host(tmp_path: Path, name: str, url: str, storage: str) -> Settings:
    return Settings(data_dir=tmp_path / name, database_url=url, document_storage=storage)


def _intake(engine, settings: Settings, inbox: Path) -> IntakeResult:
    with Session(engine) as session:
        return scan_inbox(session, inbox, documents_dir=storage_for(settings),
                          quarantine_dir=settings.quarantine_dir,
                          max_bytes=settings.max_file_bytes)


MODES = ["local", "store-sqlite", pytest.param("store-postgres", marks=pytest.mark.postgres),
         "file-url"]


@pytest.mark.parametrize("mode", MODES)
def test_an_original_taken_on_one_host_is_processed_on_another(mode, tmp_path):
    storage = {"local": "local", "file-url": (tmp_path / "shared").as_uri()}.get(mode, "store")
    with _database("postgres" if mode == "store-postgres" else "sqlite", tmp_path) as url:
        intake_host = _host(tmp_path, "host-a", url, storage)
        reader = _host(tmp_path, "host-b", url, storage)
        inbox = tmp_path / "inbox"
        originals = {p.name: p.read_bytes() for p in write_tiny_documents(inbox, 2)}
        (inbox / "empty.png").write_bytes(b"")  # quarantined: stays in the local folder
        engine_a = make_engine(url)
        result = _intake(engine_a, intake_host, inbox)
        assert len(result.received) == 2 and len(result.quarantined) == 1
        with Session(engine_a) as session:
            docs = {d.original_name: d for d in session.exec(select(Document))}
        engine_a.dispose()
        assert Path(docs.pop("empty.png").stored_path).parent == intake_host.quarantine_dir
        for name, doc in docs.items():
            sha = hashlib.sha256(originals[name]).hexdigest()
            assert doc.sha256 == sha
            if mode == "local":
                assert Path(doc.stored_path).parent.parent == intake_host.documents_dir
            elif mode == "file-url":
                assert doc.stored_path == f"{storage}/{sha[:2]}/{sha}.png"
            else:
                assert doc.stored_path == f"store:{sha}"
        if mode != "local":
            # Nothing of the intake host is needed any more.
            shutil.rmtree(intake_host.data_dir)
        engine_b = make_engine(url)
        try:
            for name, doc in docs.items():
                assert blobs.read(doc.stored_path, engine_b) == originals[name]
                assert process_document(engine_b, doc.id, BlankRecognizer(), reader) == [doc.id]
                item = review_item(engine_b, doc.id, reader)
                assert item.status == Status.REJECTED.value  # a blank page: not a document
                assert review_image(item, reader, engine_b)[:2] == b"\xff\xd8"  # a JPEG
            if mode == "local":
                # One host: the reference is a path in the intake host's data folder.
                shutil.rmtree(intake_host.data_dir)
                with pytest.raises(FileNotFoundError):
                    blobs.read(next(iter(docs.values())).stored_path, engine_b)
        finally:
            engine_b.dispose()


def test_the_review_picture_finds_the_store_by_itself(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = _host(tmp_path, "host", url, "store")
    inbox = tmp_path / "inbox"
    write_tiny_documents(inbox, 1)
    engine = make_engine(url)
    (doc_id,) = _intake(engine, settings, inbox).received
    assert review_image(review_item(engine, doc_id, settings), settings)[:2] == b"\xff\xd8"


def test_a_changed_setting_still_reads_old_references(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    refs = {}
    for n, storage in enumerate(["local", "store", (tmp_path / "shared").as_uri()]):
        inbox = tmp_path / f"inbox-{n}"
        inbox.mkdir()
        data = _png((n, n, n))
        (inbox / "page.png").write_bytes(data)
        (doc_id,) = _intake(engine, _host(tmp_path, "host-a", url, storage), inbox).received
        refs[doc_id] = data
    with Session(engine) as session:
        stored = {d.id: d.stored_path for d in session.exec(select(Document))}
    assert {"store" if blobs.is_store_ref(r) else blobs.url_scheme(r) or "path"
            for r in stored.values()} == {"path", "store", "file"}
    # Now the setting is `store` (then a URL): every reference still reads and processes.
    for doc_id, data in refs.items():
        assert blobs.read(stored[doc_id], engine) == data
    reader = _host(tmp_path, "host-b", url, "store")
    for doc_id in list(refs)[:2]:
        assert process_document(engine, doc_id, BlankRecognizer(), reader) == [doc_id]
    reader = _host(tmp_path, "host-b", url, (tmp_path / "elsewhere").as_uri())
    for doc_id in list(refs)[2:]:
        assert process_document(engine, doc_id, BlankRecognizer(), reader) == [doc_id]


def test_store_originals_are_encrypted_with_the_key_ring_and_rotated(engine, tmp_path, use_key):
    kwargs = {"documents_dir": StoreStorage(), "quarantine_dir": tmp_path / "q",
              "max_bytes": 10_000_000}
    plain_png, secret_png = _png((1, 2, 3)), _png((4, 5, 6))
    use_key(None)  # written before encryption was switched on
    with Session(engine) as session:
        ingest_bytes(session, plain_png, "before.png", **kwargs)
        session.commit()
    use_key(f"k1:{KEY_A}")
    with Session(engine) as session:
        ingest_bytes(session, secret_png, "after.png", **kwargs)
        session.commit()

    def raw() -> dict[str, tuple[str | None, bytes]]:
        with engine.connect() as conn:
            return {r.sha256: (r.kid, bytes(r.data)) for r in conn.execute(
                text("SELECT sha256, kid, data FROM document_blob"))}

    plain_sha, secret_sha = (hashlib.sha256(d).hexdigest() for d in (plain_png, secret_png))
    rows = raw()
    assert rows[plain_sha] == (None, plain_png)
    kid, sealed = rows[secret_sha]
    assert kid == "k1" and sealed.startswith(b"enc1:k1:") and PNG_SIGNATURE not in sealed
    assert blobs.read(f"store:{secret_sha}", engine) == secret_png
    with Session(engine) as session:  # through the intake's kind of handle too
        assert blobs.read(f"store:{secret_sha}", session) == secret_png

    use_key(f"k2:{KEY_B},k1:{KEY_A}")  # a new primary; the old key still decrypts
    report = rotate_encryption(engine)
    assert report["rewritten"]["document_blob.data"] == 2
    assert report["found_under"]["k1"] >= 1 and report["found_under"]["(plaintext)"] >= 1
    rows = raw()
    assert {kid for kid, _ in rows.values()} == {"k2"}
    assert all(PNG_SIGNATURE not in data for _, data in rows.values())
    assert rotate_encryption(engine)["rewritten"]["document_blob.data"] == 0
    use_key(f"k2:{KEY_B}")  # the old key removed
    assert blobs.read(f"store:{plain_sha}", engine) == plain_png
    assert blobs.read(f"store:{secret_sha}", engine) == secret_png

    # A host without the key, or with another key: an OSError (retried), never the bytes.
    use_key(None)
    with pytest.raises(BlobError, match="BACKOFFICE_ENCRYPTION_KEY"):
        blobs.read(f"store:{secret_sha}", engine)
    use_key(f"k2:{KEY_A}")
    with pytest.raises(BlobError, match="not the key"):
        blobs.read(f"store:{secret_sha}", engine)
    # Ciphertext altered, or moved to another row: refused.
    use_key(f"k2:{KEY_B}")
    blob = DocumentBlob.__table__
    altered = bytearray(rows[secret_sha][1])
    altered[-1] ^= 1
    with engine.begin() as conn:
        conn.execute(blob.update().where(blob.c.sha256 == secret_sha).values(data=bytes(altered)))
        conn.execute(blob.update().where(blob.c.sha256 == plain_sha)
                     .values(data=rows[secret_sha][1]))
    for sha in (secret_sha, plain_sha):
        with pytest.raises(BlobError, match="fails authentication"):
            blobs.read(f"store:{sha}", engine)


def test_an_altered_plaintext_original_is_refused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with Session(engine) as session:
        ref = StoreStorage().put(session, _png(), hashlib.sha256(_png()).hexdigest(), "png")
        session.commit()
    blob = DocumentBlob.__table__
    with engine.begin() as conn:
        conn.execute(blob.update().values(data=_png((9, 9, 9))))
    with pytest.raises(BlobError, match="SHA-256 differs"):
        blobs.read(ref, engine)


@pytest.mark.parametrize("ref", ["store:" + "0" * 64, "/nowhere/00/" + "0" * 64 + ".png",
                                 "s3://bucket/00/" + "0" * 64 + ".png"])
def test_a_missing_original_is_given_back_like_a_missing_file(ref, tmp_path):
    pytest.importorskip("fsspec")
    if ref.startswith("s3:"):
        with contextlib.suppress(ImportError):
            import s3fs  # noqa: F401

            pytest.skip("s3fs is installed here")
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    settings = _host(tmp_path, "host", f"sqlite:///{tmp_path / 'store.db'}", "store")
    with Session(engine) as session:
        doc = Document(sha256="0" * 64, original_name="gone.png", stored_path=ref,
                       format="png", status=Status.RECEIVED)
        session.add(doc)
        session.commit()
        doc_id = doc.id
    with pytest.raises(OSError) as err:
        process_document(engine, doc_id, BlankRecognizer(), settings)
    if ref.startswith("store:"):
        assert isinstance(err.value, BlobNotFoundError | FileNotFoundError)
        assert "no such original in the store" in str(err.value)
    if ref.startswith("s3:"):
        assert "s3fs" in str(err.value)
    with Session(engine) as session:
        doc = session.get(Document, doc_id)
        assert (doc.status, doc.attempts) == (Status.RECEIVED, 1)  # to be tried again


def test_an_unusable_setting_is_a_clear_error(tmp_path):
    def error(value: str) -> str:
        with pytest.raises(StorageConfigError) as err:
            storage_for(_host(tmp_path, "host", "sqlite://", value))
        return str(err.value)

    with contextlib.suppress(ImportError):
        import s3fs  # noqa: F401

        pytest.skip("s3fs is installed here")
    message = error("s3://bucket/prefix")
    assert message.startswith("BACKOFFICE_DOCUMENT_STORAGE=s3://bucket/prefix: ")
    assert "the s3 filesystem needs the s3fs package" in message
    assert "knows no filesystem for nosuch://" in error("nosuch://x/y")
    assert "expected local, store or an fsspec URL" in error("database")
    message = error("sftp://user:hunter2@host/share")
    assert "no password in the URL" in message and "hunter2" not in message
    assert isinstance(storage_for(_host(tmp_path, "h", "sqlite://", " Store ")), StoreStorage)


def test_file_url_objects_are_written_once_and_read_only(tmp_path):
    storage = UrlStorage((tmp_path / "shared").as_uri() + "/")
    data = _png()
    sha = hashlib.sha256(data).hexdigest()
    ref = storage.put(None, data, sha, "png")
    path = tmp_path / "shared" / sha[:2] / f"{sha}.png"
    assert ref == path.as_uri() and path.read_bytes() == data
    assert (path.stat().st_mode & 0o222) == 0
    before = path.stat()
    assert storage.put(None, data, sha, "png") == ref
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    assert blobs.read(ref) == data


def test_an_object_store_object_is_never_overwritten():
    # memory:// stands in for an object store (no rename, no hard links): direct writes.
    root = f"memory://bo-test-{uuid.uuid4().hex[:8]}/originals"
    storage = UrlStorage(root)
    data = _png()
    sha = hashlib.sha256(data).hexdigest()
    ref = storage.put(None, data, sha, "png")
    assert ref == f"{root}/{sha[:2]}/{sha}.png" and blobs.read(ref) == data
    other = _png((7, 7, 7))
    other_sha = hashlib.sha256(other).hexdigest()
    with storage.fs.open(f"{storage.root}/{other_sha[:2]}/{other_sha}.png", "wb") as fh:
        fh.write(b"not what the name says")
    ref = storage.put(None, other, other_sha, "png")  # there already: left alone
    with pytest.raises(BlobError, match="SHA-256 differs"):
        blobs.read(ref)
    with pytest.raises(BlobNotFoundError):
        blobs.read(f"{root}/00/{'0' * 64}.png")


def test_store_mode_never_records_a_document_without_its_bytes(engine, tmp_path):
    kwargs = {"documents_dir": StoreStorage(), "quarantine_dir": tmp_path / "q",
              "max_bytes": 10_000_000}
    data = _png()
    with Session(engine) as session:
        ingest_bytes(session, data, "a.png", **kwargs)
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(DocumentBlob)).all() == []
        assert session.exec(select(Document)).all() == []

    # Two workers taking the same bytes at once: one document, one blob, one duplicate.
    first = Session(engine)
    ingest_bytes(first, data, "a.png", **kwargs)  # inserted, not yet committed
    second = IntakeResult()
    errors: list[BaseException] = []

    def other_worker() -> None:
        try:
            with Session(engine) as session:
                _ingest_committed(session, data, "a-again.png", result=second, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=other_worker)
    thread.start()
    time.sleep(0.5)
    first.commit()
    first.close()
    thread.join(30)
    assert errors == [] and not thread.is_alive()
    assert second.received == [] and len(second.duplicates) == 1
    with Session(engine) as session:
        (doc,) = session.exec(select(Document)).all()
        assert doc.stored_path == f"store:{doc.sha256}"
        assert len(session.exec(select(DocumentBlob.sha256)).all()) == 1
    assert blobs.read(doc.stored_path, engine) == data
    assert not os.path.exists(tmp_path / "q")
