"""`audit-checkpoint`: publish the audit trail's head as a signed, write-once checkpoint."""

from __future__ import annotations

from backoffice.settings import apply_environment

apply_environment()

from prefect import flow, get_run_logger

from backoffice.audit import publish_checkpoint
from backoffice.runtime import get_db
from backoffice.settings import get_settings


@flow(name="audit-checkpoint")
def audit_checkpoint() -> dict:
    """Verify the audit trail and publish its head (count, last event and hash) into the
    write-once folder BACKOFFICE_AUDIT_CHECKPOINT_DIR; fails, naming the problems and
    publishing nothing, when the trail does not verify."""
    result = publish_checkpoint(get_db(get_settings()))
    get_run_logger().info("audit checkpoint: %s (%d events)", result["path"] if
                          result["written"] else "unchanged", result["count"])
    return result
