"""`apply-retention`: erase what has outlived its retention period (daily).

The store's part is :func:`backoffice.retention.apply_retention`. Prefect's part is here,
because only a flow talks to Prefect: review pictures and explanations (artifacts
``review-image`` and ``review-document``) older than ``BACKOFFICE_RETAIN_REVIEW_IMAGES_DAYS``
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

#: The artifacts that may show personal data to a reviewer.
REVIEW_ARTIFACT_KEYS = ["review-image", "review-document", "review-case"]


def delete_old_review_artifacts(days: int) -> int:
    """Delete the review artifacts created more than ``days`` ago; returns how many."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = 0
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=REVIEW_ARTIFACT_KEYS)), limit=200, offset=offset)
            if not page:
                return deleted
            kept = 0
            for artifact in page:
                if artifact.created is not None and artifact.created < cutoff:
                    client.delete_artifact(artifact.id)
                    deleted += 1
                else:
                    kept += 1
            offset += kept


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
