"""Every deployment of the back office, declared in this one place, and serving them.

| deployment (``flow/deployment``) | schedule |
|---|---|
| ``process-inbox/process-inbox`` | every ``BACKOFFICE_INBOX_POLL_SECONDS`` (60 s), inbox ``BACKOFFICE_INBOX_DIR`` |
| ``drain-outbox/drain-outbox`` | every ``BACKOFFICE_DRAIN_INTERVAL_SECONDS`` (60 s) |
| ``reconcile-masters/reconcile-masters`` | cron ``BACKOFFICE_RECONCILE_CRON`` (02:00), Asia/Shanghai; paused until ``BACKOFFICE_RECONCILE_CORE_CSV`` and ``_CLAIMS_CSV`` are set |
| ``kpi-report/kpi-report`` | cron ``BACKOFFICE_KPI_CRON`` (07:30), Asia/Shanghai |
| ``review-document/review-document`` | none: started by process-inbox per document to review |
| ``review-case/review-case`` | none: started by process-inbox per claim case to review |
| ``audit-checkpoint/audit-checkpoint`` | cron ``BACKOFFICE_AUDIT_CHECKPOINT_CRON`` (hourly), Asia/Shanghai |
| ``apply-retention/apply-retention`` | cron ``BACKOFFICE_RETENTION_CRON`` (03:30), Asia/Shanghai |

The time zone is ``BACKOFFICE_SCHEDULE_TIMEZONE`` (default Asia/Shanghai), always explicit.

Driving it from a test (what ``tests/test_serve.py`` does): start
``python -m cli serve --port P --pause-schedules`` as a subprocess with
``BACKOFFICE_DATA_DIR`` set and no ``PREFECT_*`` variables (``start_new_session=True``);
poll ``POST http://127.0.0.1:P/api/deployments/filter`` until the eight deployments exist;
stop it with ``os.killpg(pid, SIGTERM)`` (it stops its Prefect server). Or in-process:
``backoffice.server.start_prefect_server(port, home)`` then, with ``PREFECT_API_URL`` set
to ``server.api_url`` before Prefect is imported, ``serve_deployments(...)``.
In the UI: *process-inbox* → Run → Custom run, parameters ``inbox``, ``batch``,
``doc_types``, ``confidence_threshold``, ``dry_run``, ``max_documents``,
``request_review``; a document routed to review gets a run named
``review-document-<document id>`` that pauses; its *Resume* form has ``decision``
(approve/correct/reject), ``reviewer``, ``reject_reason``, ``override`` and the editable
document fields by name. ``confidence_threshold=1.0`` sends every ID card to review. A
claim case routed to review gets a run named ``review-case-<case id>`` whose form decides
the whole case (``d<document>__<field>`` fields to check).
The boxed picture is the run's ``review-image`` markdown artifact (a data: URI image).
``serve_deployments`` blocks, running each flow run as a subprocess of this process; it
needs ``PREFECT_API_URL`` to point at a server (``backoffice serve`` starts one).
"""

from __future__ import annotations

from datetime import timedelta

from backoffice.settings import Settings, apply_environment, get_settings

apply_environment()

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval

from flows.apply_retention import apply_retention_flow
from flows.audit_checkpoint import audit_checkpoint
from flows.drain_outbox import drain_outbox
from flows.kpi_report import kpi_report
from flows.process_inbox import process_inbox
from flows.reconcile_masters import reconcile_masters
from flows.review_case import review_case
from flows.review_document import review_document

#: ``flow-name/deployment-name`` of each deployment, for ``run_deployment`` and tests.
PROCESS_INBOX = "process-inbox/process-inbox"
DRAIN_OUTBOX = "drain-outbox/drain-outbox"
RECONCILE_MASTERS = "reconcile-masters/reconcile-masters"
KPI_REPORT = "kpi-report/kpi-report"
REVIEW_DOCUMENT = "review-document/review-document"
REVIEW_CASE = "review-case/review-case"
AUDIT_CHECKPOINT = "audit-checkpoint/audit-checkpoint"
APPLY_RETENTION = "apply-retention/apply-retention"


def build_deployments(settings: Settings | None = None, *, pause_schedules: bool = False,
                      entrypoint_type: EntrypointType = EntrypointType.FILE_PATH,
                      ) -> list[RunnerDeployment]:
    """The deployments with their schedules. ``pause_schedules``: create every schedule
    paused (runs only when triggered, e.g. from the UI). ``entrypoint_type``: module paths
    for a work pool (a worker imports the installed package)."""
    settings = settings or get_settings()
    tz = settings.schedule_timezone
    reconcile_ready = bool(settings.reconcile_core_csv and settings.reconcile_claims_csv)
    return [
        process_inbox.to_deployment(
            entrypoint_type=entrypoint_type, name="process-inbox", tags=["operations"],
            schedules=[Interval(timedelta(seconds=settings.inbox_poll_seconds), timezone=tz)],
            paused=pause_schedules, parameters={"inbox": str(settings.inbox)},
            # One at a time: a slow poll and a run started from the UI queue, not race.
            concurrency_limit=1,
            description="Poll the inbox: intake, OCR, rules, routing; documents to review "
            "get a review-document run."),
        drain_outbox.to_deployment(
            entrypoint_type=entrypoint_type, name="drain-outbox", tags=["operations"],
            schedules=[Interval(timedelta(seconds=settings.drain_interval_seconds),
                                timezone=tz)],
            paused=pause_schedules,
            # Each run drains for at most one interval; a run due while another still
            # drains is dropped rather than queued (drains are safe in parallel, but a
            # backlog of queued runs against a down target helps nobody).
            parameters={"max_seconds": float(settings.drain_interval_seconds)},
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
            description="Post approved documents' outbox messages to the downstream systems."),
        reconcile_masters.to_deployment(
            entrypoint_type=entrypoint_type, name="reconcile-masters", tags=["operations", "daily"],
            schedules=[Cron(settings.reconcile_cron, timezone=tz)],
            paused=pause_schedules or not reconcile_ready,
            parameters={"core_csv": str(settings.reconcile_core_csv),
                        "claims_csv": str(settings.reconcile_claims_csv)}
            if reconcile_ready else {},
            description="Daily reconciliation of the core and claims customer masters "
            f"({settings.reconcile_cron}, {tz})."),
        kpi_report.to_deployment(
            entrypoint_type=entrypoint_type, name="kpi-report", tags=["operations", "daily"],
            schedules=[Cron(settings.kpi_cron, timezone=tz)], paused=pause_schedules,
            description=f"Daily KPI report ({settings.kpi_cron}, {tz})."),
        review_document.to_deployment(
            entrypoint_type=entrypoint_type, name="review-document", tags=["review"],
            description="Pause for a reviewer's decision on one document (started by "
            "process-inbox)."),
        review_case.to_deployment(
            entrypoint_type=entrypoint_type, name="review-case", tags=["review"],
            description="Pause for a reviewer's decision on a whole claim case (started by "
            "process-inbox)."),
        audit_checkpoint.to_deployment(
            entrypoint_type=entrypoint_type, name="audit-checkpoint", tags=["operations"],
            schedules=[Cron(settings.audit_checkpoint_cron, timezone=tz)],
            paused=pause_schedules,
            description="Verify the audit trail and publish its head as a signed checkpoint "
            f"({settings.audit_checkpoint_cron}, {tz})."),
        apply_retention_flow.to_deployment(
            entrypoint_type=entrypoint_type, name="apply-retention", tags=["operations"],
            schedules=[Cron(settings.retention_cron, timezone=tz)], paused=pause_schedules,
            description="Erase the personal data that has outlived its retention period "
            f"(BACKOFFICE_RETAIN_*_DAYS; {settings.retention_cron}, {tz})."),
    ]


POOL_TEMPLATES = ("process", "docker", "kubernetes")
#: The work queue of process-inbox (the host that sees the inbox).
INTAKE_QUEUE = "intake"


def pool_template(kind: str = "process") -> dict:
    """The base job template of a work pool of this kind (``flows/work_pools/*.json``:
    Prefect's default with the back office's defaults, e.g. ``BACKOFFICE_DISPATCH=readers``)."""
    import json
    from importlib.resources import files

    if kind not in POOL_TEMPLATES:
        raise ValueError(f"no work pool template for {kind!r}; one of {POOL_TEMPLATES}")
    return json.loads(files("flows.work_pools").joinpath(f"{kind}.json").read_text())


def ensure_work_pool(name: str, kind: str = "process") -> bool:
    """Create the work pool with the repository's base job template if it does not exist.
    True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type=kind, base_job_template=pool_template(kind),
                description="backoffice: process-inbox, drain-outbox, reconcile-masters, "
                "kpi-report, review-document, review-case"))
            return True


def deploy_to_pool(settings: Settings | None = None, *, pool: str | None = None,
                   kind: str = "process", pause_schedules: bool = False) -> list[str]:
    """Register every deployment with the work pool (created if missing): hosts run them
    with ``prefect worker start --pool <pool>``. The entrypoints are module paths
    (``flows.process_inbox.process_inbox``), so a worker needs the package installed, not
    this checkout. Returns the deployments' ``flow/name``."""
    settings = settings or get_settings()
    pool = pool or settings.work_pool
    ensure_work_pool(pool, kind)
    names = []
    for deployment in build_deployments(settings, pause_schedules=pause_schedules,
                                        entrypoint_type=EntrypointType.MODULE_PATH):
        # process-inbox needs the inbox: its own queue, which only the intake host's
        # worker serves; the rest run on any worker of the pool.
        deployment.work_queue_name = INTAKE_QUEUE if deployment.name == "process-inbox" \
            else "default"
        deployment.apply(work_pool_name=pool)
        names.append(f"{deployment.flow_name}/{deployment.name}")
    return names


def serve_deployments(settings: Settings | None = None, *, pause_schedules: bool = False,
                      limit: int | None = None) -> None:
    """Register the deployments with the server at ``PREFECT_API_URL`` and run their flow
    runs until interrupted (Ctrl-C or SIGTERM). The store's schema is brought to the newest
    migration first (``backoffice.migrations``), once, before any run starts."""
    from backoffice.runtime import get_db

    get_db(settings)
    serve(*build_deployments(settings, pause_schedules=pause_schedules), limit=limit,
          print_starting_message=False)


if __name__ == "__main__":
    serve_deployments()
