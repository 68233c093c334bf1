"""The operator's path through the Prefect UI, in headless Chromium, on a live local server.

The test drives Prefect's **V2 UI** (React, served at ``/v2``): in Prefect 3.8.8 it is what
an operator lands on (``/`` redirects there unless the browser chose V1), it renders both a
pydantic parameter model (Run → Custom run) and a ``RunInput`` (run menu → Resume) as typed
forms, and V1 is the legacy UI. The server is started with
``PREFECT_SERVER_UI_V2_ENABLED=true`` so a changed default cannot switch UIs under the test.

Screenshots of every step go to the test's ``tmp_path`` (``ui-shots/``); the test prints
where.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest
from browser import PrefectUI, chromium, evidence_on_failure, wait_until
from conftest import FIXTURES, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# -- the operator's stack: `backoffice serve` on a free port, a browser -------------------
class OperatorStack:
    """A running ``backoffice serve``: the Prefect server with its UI and every deployment."""

    def __init__(self, url: str, data_dir: Path, process: subprocess.Popen, log: Path) -> None:
        self.url, self.data_dir, self.process, self.log = url, data_dir, process, log

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    @property
    def inbox(self) -> Path:
        return self.data_dir / "inbox"

    def engine(self):
        """The store that the served flows write (the same SQLite file)."""
        from backoffice.runtime import db_engine
        from backoffice.settings import Settings

        # database_url=None: the default SQLite file, whatever the environment says.
        return db_engine(Settings(data_dir=self.data_dir, database_url=None).database_url)

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.api_url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Stop a process and its children (it runs in its own process group); False when
    SIGTERM did not stop it within ``timeout`` seconds and it had to be killed."""
    if process.poll() is not None:
        return True
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        return False
    except ProcessLookupError:
        pass
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "BACKOFFICE_PREFECT_API_URL",
                        "BACKOFFICE_DATABASE_URL")}
    env.update(BACKOFFICE_DATA_DIR=str(data_dir), PREFECT_HOME=str(data_dir / "prefect"),
               PREFECT_SERVER_UI_V2_ENABLED="true",
               # Served deployments pick up a run created in the UI within a second.
               PREFECT_RUNNER_POLL_FREQUENCY="1", **extra)
    return env


def _deployment_id(api_url: str, name: str) -> UUID | None:
    from prefect.exceptions import ObjectNotFound

    with prefect_client(api_url) as client:
        try:
            return client.read_deployment_by_name(name).id
        except ObjectNotFound:
            return None


@pytest.fixture(scope="module")
def operator_stack(tmp_path_factory) -> Iterator[OperatorStack]:
    """``backoffice serve --pause-schedules`` on 127.0.0.1:<free port>, its own data folder.

    Schedules are paused so that only the runs this test starts from the UI happen.
    """
    data_dir = tmp_path_factory.mktemp("operator-data")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port),
             "--pause-schedules"],
            env=_env(data_dir), cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    stack = OperatorStack(url, data_dir, process, log)
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError("backoffice serve exited:\n" + _tail(log))
            return stack.healthy() and all(
                _deployment_id(stack.api_url, name) for name in
                ("process-inbox/process-inbox", "review-document/review-document",
                 "review-case/review-case"))

        wait_until("backoffice serve", ready, timeout=240, interval=1.0)
        yield stack
    finally:
        graceful = _stop(process)
        # `backoffice serve` stops the server it started; nothing is left behind even when
        # serve had to be killed (the server is then SIGTERMed as its parent dies).
        wait_until(f"the Prefect server to stop with backoffice serve (stopped by "
                   f"{'SIGTERM' if graceful else 'SIGKILL'}); its log:\n" + _tail(log),
                   lambda: not stack.healthy(), timeout=30, interval=0.5)


@contextmanager
def served(stack: OperatorStack, argv: list[str], deployment: str, log: Path,
           timeout: float = 120.0) -> Iterator[UUID]:
    """Serve more deployments in a subprocess; yield `deployment`'s id once registered."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=_env(stack.data_dir, PREFECT_API_URL=stack.api_url),
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        def registered() -> UUID | None:
            if process.poll() is not None:
                raise RuntimeError(f"serving {deployment} exited:\n" + _tail(log))
            return _deployment_id(stack.api_url, deployment)

        yield wait_until(f"deployment {deployment}", registered, timeout, interval=0.5)
    finally:
        _stop(process)


@contextmanager
def prefect_client(api_url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (temporary_settings(updates={PREFECT_API_URL: api_url}),
          get_client(sync_client=True) as client):
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def ui(browser, operator_stack, tmp_path) -> Iterator[PrefectUI]:
    browser.set_window_size(1400, 1000)
    yield PrefectUI(browser, operator_stack.url, tmp_path / "ui-shots")


def run_id_from_toast(ui: PrefectUI) -> str:
    """Follow the "View run" link of the toast shown after Submit; return the run's id."""
    ui.click(wait_until("the View run link", lambda: next(
        (e for e in ui.driver.find_elements(
            "xpath", "//*[normalize-space()='View run'][self::a or self::button]")
         if e.is_displayed()), None)))
    url = wait_until("the flow run page", lambda: "/runs/flow-run/" in ui.driver.current_url
                     and ui.driver.current_url)
    return url.split("/runs/flow-run/")[1].split("?")[0].split("/")[0]


def inputs_left(stack: OperatorStack, flow_run_id: str) -> list[str]:
    """The run inputs Prefect still holds for a run (a review deletes every one of its
    forms and answers: they hold values and the reviewer's key)."""
    with prefect_client(stack.api_url) as client:
        return [i.key for i in client.filter_flow_run_input(
            UUID(flow_run_id), key_prefix="", limit=20, exclude_keys=set())]


def paused_for(stack: OperatorStack, flow_run_id: str, kind: str, timeout: float = 120.0):
    """Wait until the run pauses for a form of this kind (``review`` or ``check``)."""
    def probe():
        with prefect_client(stack.api_url) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return run if run.state and run.state.is_paused() and (
            run.state.state_details.pause_key or "").startswith(kind + "-") else None

    return wait_until(f"flow run {flow_run_id} paused for a {kind} form", probe, timeout,
                      interval=0.5)


def final_state(stack: OperatorStack, flow_run_id: str, timeout: float = 60.0):
    def probe():
        with prefect_client(stack.api_url) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return run if run.state and run.state.is_final() else None

    return wait_until(f"flow run {flow_run_id} to finish", probe, timeout, interval=0.5)


# -- the real thing: process-inbox → review-document paused → review form → outbox --------
REVIEW_FIXTURE = "photo/s2026_0003_front.jpg"  # compound surname 慕容 read at ~0.75: review


@pytest.mark.ocr
def test_operator_triggers_processing_reviews_in_ui_and_document_reaches_outbox(
        operator_stack, ui, idcard_truth):
    with evidence_on_failure(ui):
        operator_path(operator_stack, ui, idcard_truth[REVIEW_FIXTURE]["fields"])


def operator_path(operator_stack: OperatorStack, ui: PrefectUI, truth: dict) -> None:
    """Trigger, review, check: what an operator does, step by step, with screenshots."""
    from sqlmodel import Session, select

    from backoffice.audit import AuditEvent
    from backoffice.outbox import OutboxMessage
    from backoffice.store import Document, Status

    started = time.monotonic()
    operator_stack.inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "idcards" / REVIEW_FIXTURE, operator_stack.inbox / "front.jpg")

    # 1. Deployments → process-inbox → Run → Custom run: the typed form, submitted.
    ui.custom_run(str(_deployment_id(operator_stack.api_url, "process-inbox/process-inbox")))
    ui.variant("batch", "str")
    ui.fill("batch", "ui-e2e")
    ui.variant("confidence_threshold", "float")
    ui.fill("confidence_threshold", "0.9")
    ui.shot("process-inbox-run-form")
    ui.submit_run()
    process_run = run_id_from_toast(ui)
    ui.wait_state(process_run, "Completed", timeout=240)
    ui.click("Artifacts")
    ui.wait_text("process-inbox-documents")
    ui.shot("process-inbox-completed-artifacts")
    run = final_state(operator_stack, process_run)
    assert run.parameters["batch"] == "ui-e2e" and run.parameters["confidence_threshold"] == 0.9

    with Session(operator_stack.engine()) as session:
        doc = session.exec(select(Document).where(Document.batch == "ui-e2e")).one()
    assert doc.status is Status.IN_REVIEW, (doc.status, doc.reason)

    # 2. Runs → the review-document run of that document, paused → Resume → the form.
    ui.open("runs")
    runs_links = "//a[contains(@href, '/runs/flow-run/')]"
    name = f"review-document-{doc.id}"  # the run takes this name when it starts
    ui.click(ui.reload_until(
        f"run {name} in the runs list",
        loaded=lambda: bool(ui.driver.find_elements("xpath", runs_links)),
        found=lambda: next((a for a in ui.driver.find_elements("xpath", runs_links)
                            if a.text.strip() == name), None), timeout=120))
    review_run = wait_until("the review run's page", lambda: "/runs/flow-run/" in
                            ui.driver.current_url and ui.driver.current_url).split(
        "/runs/flow-run/")[1].split("?")[0].split("/")[0]
    ui.wait_state(review_run, "Paused", timeout=120)
    ui.shot("review-run-paused")
    ui.click("Artifacts")
    ui.click(wait_until("the review-image artifact", lambda: ui.driver.find_element(
        "xpath", f"//*[starts-with(normalize-space(), 'review-image-{doc.id}-')]")))
    ui.click(wait_until("its latest version", lambda: ui.driver.find_element(
        "xpath", "//a[contains(@href, '/artifacts/artifact/')]")))
    wait_until("the boxed picture", lambda: any(
        (img.get_attribute("src") or "").startswith("data:image/jpeg") and
        img.get_property("naturalWidth") > 0
        for img in ui.driver.find_elements("tag name", "img")), timeout=60)
    ui.shot("review-image-artifact")
    ui.flow_run(review_run)
    ui.wait_state(review_run, "Paused")

    ui.driver.set_window_size(1400, 2200)  # the form's explanation and fields in one shot
    dialog = ui.open_resume_form()
    ui.wait_text(f"Review document {doc.id}")
    explained = dialog.text
    assert "name: confidence" in explained  # why it is here, in words
    assert truth["id_number"] not in explained and truth["address"] not in explained
    assert truth["id_number"][:3] + "*" in explained  # masked, not hidden
    assert ui.field("name").get_attribute("value") == truth["name"]  # prefilled, in clear
    assert ui.field("Your personal key").get_attribute("type") == "password"
    ui.choose("Decision", "approve")
    ui.fill("Reviewer", "operator-ui")
    review_shot = ui.shot("review-form-filled", element=dialog)
    ui.submit_resume()
    ui.driver.set_window_size(1400, 1000)
    ui.wait_state(review_run, "Completed", timeout=120)
    ui.click("Logs")
    ui.wait_text("approved by operator-ui")  # the run says where the document went
    ui.shot("review-run-completed")

    # 3. The document is approved and its messages wait in the outbox.
    assert final_state(operator_stack, review_run).state.is_completed()
    assert inputs_left(operator_stack, review_run) == []  # the answer is not kept in Prefect
    with Session(operator_stack.engine()) as session:
        doc = session.get(Document, doc.id)
        messages = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id == doc.id)).all()
        actors = {e.actor for e in session.exec(select(AuditEvent).where(
            AuditEvent.document_id == doc.id))}
    assert doc.status is Status.APPROVED, (doc.status, doc.reason)
    assert messages and {m.target for m in messages} >= {"core"}, messages
    assert "operator-ui" in actors
    print(f"\noperator path in {time.monotonic() - started:.1f} s; review screen: "
          f"{review_shot}; all screenshots: {ui.shots}")


# -- a claim case in review: its review-case run, one form for the whole case -----------


def test_operator_reviews_a_claim_case_as_a_whole_in_ui(operator_stack, ui):
    """The case's pages, failed check and fields as the operator sees them in the Resume
    form; the card number corrected there; the case approved with its messages."""
    with evidence_on_failure(ui):
        case_path(operator_stack, ui)


def case_path(operator_stack: OperatorStack, ui: PrefectUI) -> None:
    import datetime

    from case_support import CARD, PAGES, make_case
    from prefect.deployments import run_deployment
    from sqlmodel import Session, select

    from backoffice.cases import assess_case
    from backoffice.outbox import OutboxMessage
    from backoffice.settings import Settings
    from backoffice.store import Case, CaseDocument, CaseStatus, Document
    from validators.rules._samples import CLAIM, LOOKUP, STANDARD_ID

    engine = operator_stack.engine()
    wrong = "6222020200112233453"
    case_id = make_case(engine, "UI-CASE-1", {**PAGES, "bank_card": {**CARD, "card_number": wrong}})
    assess_case(engine, case_id, Settings(data_dir=operator_stack.data_dir, database_url=None),
                lookup=LOOKUP, today=datetime.date(2025, 4, 1))
    with Session(engine) as session:
        ids = session.exec(select(CaseDocument.document_id).where(
            CaseDocument.case_id == case_id)).all()
        card = session.exec(select(Document).where(Document.id.in_(ids),
                                                   Document.doc_type == "bank_card")).one()
    with prefect_client(operator_stack.api_url):
        run = run_deployment("review-case/review-case", parameters={"case": str(case_id)},
                             timeout=0, as_subflow=False)
    ui.wait_state(str(run.id), "Paused", timeout=120)
    ui.shot("review-case-paused")
    ui.driver.set_window_size(1400, 2600)
    dialog = ui.open_resume_form()
    ui.wait_text("Review case UI-CASE-1")
    explained = dialog.text
    assert "case.bank_card_matches_account" in explained  # the failed check, in words
    assert "Document" in explained and "medical_invoice" in explained  # every page
    assert STANDARD_ID not in explained and CLAIM["phone"] not in explained  # masked
    key = f"d{card.id}__card_number"
    assert ui.field(key).get_attribute("value") == wrong  # to check: prefilled, in clear
    ui.fill(key, CLAIM["account_number"])
    ui.choose("Decision", "approve")
    ui.fill("Reviewer", "operator-ui")
    ui.shot("review-case-form-filled", element=dialog)
    ui.submit_resume()
    # A card number is a four-eyes field: the run pauses for a second reviewer.
    paused_for(operator_stack, str(run.id), "check")
    ui.flow_run(str(run.id))
    ui.wait_state(str(run.id), "Paused")
    dialog = ui.open_resume_form()
    ui.wait_text("Second pair of eyes")
    assert "operator-ui" in dialog.text and CLAIM["account_number"] in dialog.text
    assert STANDARD_ID not in dialog.text and CLAIM["phone"] not in dialog.text
    ui.choose("Confirm or refuse", "confirm")
    ui.fill("Checker", "checker-ui")
    ui.shot("review-case-checker-form", element=dialog)
    ui.submit_resume()
    ui.driver.set_window_size(1400, 1000)
    ui.wait_state(str(run.id), "Completed", timeout=120)
    assert inputs_left(operator_stack, str(run.id)) == []
    with Session(engine) as session:
        case = session.get(Case, case_id)
        messages = session.exec(select(OutboxMessage).where(
            OutboxMessage.document_id.in_(ids))).all()
    assert case.status is CaseStatus.APPROVED and case.decided_by == "operator-ui"
    assert sorted(m.target for m in messages) == ["claims", "core", "payments"]
