"""Masking of log records, tracebacks, exception messages and SQL errors."""

from __future__ import annotations

import io
import logging

import pytest
from sqlmodel import Session

from backoffice.log_masking import MaskedError, MaskingFilter, install_log_masking, mask_exceptions
from domain.masking import mask_known

ID = "11010519491231002X"
PHONE = "13812345678"
ACCOUNT = "6222021234567890123"


def _capture(logger_name: str):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, handler, stream


def test_every_record_is_masked_with_its_traceback():
    install_log_masking()  # what apply_environment does for every entry point
    logger, handler, stream = _capture("prefect.flow_runs.test-masking")
    try:
        try:
            raise ValueError(f"bad account {ACCOUNT} for {ID}")
        except ValueError:
            logger.exception("posting %s failed (phone %s)", ID, PHONE)
        logger.info({"id": ID})  # a non-string message
    finally:
        logging.getLogger("prefect.flow_runs.test-masking").removeHandler(handler)
    text = stream.getvalue()
    for value in (ID, PHONE, ACCOUNT):
        assert value not in text
    assert "110*************2X" in text and "138****5678" in text
    assert "Traceback" in text and "ValueError: bad account" in text  # still useful


def test_the_filter_for_logging_configurations():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "id %s", (ID,), None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "id 110*************2X"


def test_exceptions_leaving_a_task_are_masked():
    @mask_exceptions
    def task_body(number):
        raise KeyError(f"no customer {number}")

    with pytest.raises(MaskedError) as caught:
        task_body(ID)
    assert ID not in str(caught.value) and "KeyError" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_known_values_are_masked_in_free_text():
    reason = "name on card 王晓明 differs; address 北京市朝阳区建国路88号院"
    masked = mask_known(reason, {"name": "王晓明", "address": "北京市朝阳区建国路88号院",
                                 "sex": "男"})
    assert "王晓明" not in masked and "建国路88号" not in masked
    assert "王**" in masked


def test_sql_errors_do_not_quote_values(tmp_path):
    from sqlalchemy.exc import IntegrityError

    from backoffice.store import Document, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with Session(engine) as session:
        for _ in range(2):
            session.add(Document(sha256="a" * 64, original_name=f"王晓明 {ID}.png",
                                 stored_path="/x"))
        with pytest.raises(IntegrityError) as caught:
            session.commit()
    assert ID not in str(caught.value) and "王晓明" not in str(caught.value)


def test_connector_errors_lose_the_documents_names_and_addresses():
    from backoffice.connectors.base import PermanentError, TransientError
    from backoffice.outbox.drain import _Claimed, _post

    payload = {"fields": {"name": "王晓明", "address": "北京市朝阳区建国路88号院",
                          "id_number": ID}}

    class Refusing:
        def __init__(self, exc):
            self.exc = exc

        def post(self, outgoing):
            raise self.exc

    for exc in (PermanentError(f"HTTP 422: 王晓明 at 北京市朝阳区建国路88号院 ({ID})"),
                TransientError("HTTP 503: busy with 王晓明")):
        message = _Claimed(1, 7, "core", payload, 1, "doc-7:core:v1", 1)
        outcome = _post(Refusing(exc), message)
        assert outcome.error.startswith("HTTP ")
        for value in ("王晓明", "建国路88号院", ID):
            assert value not in outcome.error


@pytest.mark.integration
def test_prefect_run_logs_and_failed_states_are_masked(prefect_harness):
    """Through a real Prefect server: what the run logger ships to the API and the state
    message of a failed task hold no full value."""
    import asyncio

    from prefect import flow, get_run_logger, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    install_log_masking()

    @task(name="masking-probe-task")
    @mask_exceptions
    def failing(number: int) -> None:
        raise LookupError(f"no customer {ID}, phone {PHONE}, account {ACCOUNT}")

    @flow(name="masking-probe")
    def probe() -> str:
        get_run_logger().info("customer %s phone %s account %s", ID, PHONE, ACCOUNT)
        state = failing(1, return_state=True)
        return state.message or ""

    state = probe(return_state=True)
    message = state.result()
    assert "LookupError" in message
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs travel in background batches

    async def _read():
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            return logs, runs

    logs, runs = asyncio.run(_read())
    shipped = "\n".join(log.message for log in logs)
    assert "110*************2X" in shipped  # the record was shipped, masked
    states = "\n".join(str(r.state.message) for r in runs if r.state)
    for value in (ID, PHONE, ACCOUNT):
        assert value not in shipped and value not in message and value not in states
