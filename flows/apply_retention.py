"""`apply-retention`: erase what has outlived its retention period (daily).

The store's part is :func:`backoffice.retention.apply_retention`. Prefect's part is here,
because only a flow talks to Prefect: review pictures and explanations (artifacts
``review-*``) older than ``BACKOFFICE_RETAIN_REVIEW_IMAGES_DAYS``, with their runs' inputs,
are deleted from Prefect's database (a review removes its own when it ends; these are
those of runs that never ended).
"""

from __future__ import annotations

from backoffice.settings import apply_environment

apply_environment()

from datetime import UTC, datetime, timedelta

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
    get_run_logger().info("retention %s: %s", report["request"], report["counts"])
    return report
