"""`apply-retention`: erase what has outlived its retention period (daily).

The store's part is :func:`backoffice.retention.apply_retention`. Prefect's part is here,
because only a flow talks to Prefect: review pictures and explanations (artifacts
``review-*``) older than ``BACKOFFICE_RETAIN_REVIEW_IMAGES_DAYS``, with their runs' inputs,
are deleted from Prefect's database (a review removes its own when it ends; these are
those of runs that never ended). Deleted rows of a SQLite database stay in its free pages
and its write-ahead log until overwritten, so Prefect's own SQLite file is then compacted
(``VACUUM``, the log truncated): :func:`compact_prefect_database`.
"""

from __future__ import annotations

from backoffice.settings import apply_environment

apply_environment()

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger

from backoffice.retention import apply_retention
from backoffice.runtime import get_db
from backoffice.settings import get_settings


def delete_old_review_artifacts(days: int) -> int:
    """Forget the review runs whose artifacts were created more than ``days`` ago: their
    artifacts emptied then deleted, their inputs deleted (``forget_run``, the same cleanup
    a review does when it ends). Returns how many artifacts went."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.review_document import forget_run

    cutoff = datetime.now(UTC) - timedelta(days=days)
    runs: set = set()
    old = 0
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(like_="review-%")), limit=200, offset=offset)
            if not page:
                break
            offset += len(page)
            for artifact in page:
                if artifact.created is not None and artifact.created < cutoff:
                    old += 1
                    if artifact.flow_run_id is not None:
                        runs.add(artifact.flow_run_id)
    for run in runs:
        forget_run(run)
    return old


def compact_prefect_database() -> str:
    """Rewrite Prefect's SQLite database without its free pages (where deleted run inputs
    and artifacts linger) and truncate its write-ahead log. Says what was done; on
    PostgreSQL, nothing (its dead rows are the database team's ``VACUUM FULL`` routine)."""
    import sqlite3

    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    if not url.startswith("sqlite+aiosqlite:///"):
        return "not SQLite: left to the database's own VACUUM routine"
    path = url.removeprefix("sqlite+aiosqlite:///")
    if path in ("", ":memory:"):
        return "in memory: nothing kept"
    if not Path(path).is_file():
        return "not on this machine: compact it where the Prefect server runs"
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        return f"not compacted: {exc}"
    finally:
        conn.close()
    return "compacted"


@flow(name="apply-retention")
def apply_retention_flow(dry_run: bool = False) -> dict:
    """Erase the personal data that has outlived its retention period
    (BACKOFFICE_RETAIN_ORIGINALS_DAYS, _REVIEW_IMAGES_DAYS, _FIELDS_DAYS, _AUDIT_DAYS; empty
    keeps that kind). Returns the counts, never values.

    Args:
        dry_run: Count what would be erased, erase nothing.
    """
    settings = get_settings()
    report = apply_retention(get_db(settings), settings, dry_run=dry_run).as_dict()
    if settings.retain_review_images_days is not None and not dry_run:
        report["counts"]["prefect_review_artifacts"] = delete_old_review_artifacts(
            settings.retain_review_images_days)
    if not dry_run:
        report["prefect_database"] = compact_prefect_database()
    get_run_logger().info("retention %s: %s", report["request"], report["counts"])
    return report
