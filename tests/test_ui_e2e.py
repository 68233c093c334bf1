"""The operator's path through the Prefect UI, in headless Chromium, on a live local server.

The test drives Prefect's **V2 UI** (React, served at ``/v2``): in Prefect 3.8.8 it is what
an operator lands on (``/`` redirects there unless the browser chose V1), it renders both a
pydantic parameter model (Run → Custom run) and a ``RunInput`` (run menu → Resume) as typed
forms, and V1 is the legacy UI. The server is started with
``PREFECT_SERVER_UI_V2_ENABLED=true`` so a changed default cannot switch UIs under the test.

Screenshots of every step go to the test's ``tmp_path`` (``ui-shots/``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest
from browser import PrefectUI, chromium, wait_until
from conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# -- a live Prefect server, served deployments, a browser ---------------------------------
class LiveServer:
    def __init__(self, url: str, home: Path, process: subprocess.Popen, log: Path) -> None:
        self.url, self.home, self.process, self.log = url, home, process, log

    @property
    def api_url(self) -> str:
        return self.url + "/api"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a process and its children (it runs in its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _server_env(home: Path, url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(
        PREFECT_HOME=str(home),
        # The UI asks the API at this address; by default it assumes port 4200.
        PREFECT_UI_API_URL=url + "/api",
        PREFECT_SERVER_UI_V2_ENABLED="true",
    )
    return env


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """``prefect server start`` on 127.0.0.1 (a free port) with the UI, offline settings."""
    import httpx

    home = tmp_path_factory.mktemp("prefect-ui-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=_server_env(home, url), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError("prefect server exited:\n" + _tail(log))
            try:
                return httpx.get(url + "/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("the Prefect server", healthy, timeout=180, interval=0.5)
        yield LiveServer(url, home, process, log)
    finally:
        _stop(process)


@contextmanager
def served(server: LiveServer, argv: list[str], deployment: str, log: Path,
           extra_env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[UUID]:
    """Serve deployments in a subprocess; yield the id of `deployment` once registered."""
    env = _server_env(server.home, server.url)
    env.update(PREFECT_API_URL=server.api_url, PYTHONPATH=str(ROOT),
               # Pick up a run created in the UI within a second, not the default ten.
               PREFECT_RUNNER_POLL_FREQUENCY="1", **(extra_env or {}))
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def registered() -> UUID | None:
            if process.poll() is not None:
                raise RuntimeError(f"serving {deployment} exited:\n" + _tail(log))
            from prefect.exceptions import ObjectNotFound

            with prefect_client(server) as client:
                try:
                    return client.read_deployment_by_name(deployment).id
                except ObjectNotFound:
                    return None

        yield wait_until(f"deployment {deployment}", registered, timeout, interval=0.5)
    finally:
        _stop(process)


@contextmanager
def prefect_client(server: LiveServer):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (temporary_settings(updates={PREFECT_API_URL: server.api_url}),
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
def ui(browser, live_server, tmp_path) -> PrefectUI:
    return PrefectUI(browser, live_server.url, tmp_path / "ui-shots")


def run_id_from_toast(ui: PrefectUI) -> str:
    """Follow the "View run" link of the toast shown after Submit; return the run's id."""
    ui.click(wait_until("the View run link", lambda: next(
        (e for e in ui.driver.find_elements(
            "xpath", "//*[normalize-space()='View run'][self::a or self::button]")
         if e.is_displayed()), None)))
    url = wait_until("the flow run page", lambda: "/runs/flow-run/" in ui.driver.current_url
                     and ui.driver.current_url)
    return url.split("/runs/flow-run/")[1].split("?")[0].split("/")[0]


def run_input(server: LiveServer, flow_run_id: str) -> dict:
    """What the resume form sent, as the server stored it."""
    with prefect_client(server) as client:
        inputs = client.filter_flow_run_input(UUID(flow_run_id), key_prefix="paused-",
                                              limit=20, exclude_keys=set())
    responses = [i for i in inputs if i.key.endswith("-response")]
    assert responses, [i.key for i in inputs]
    return json.loads(responses[-1].value)


def final_state(server: LiveServer, flow_run_id: str, timeout: float = 60.0):
    def probe():
        with prefect_client(server) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return run if run.state and run.state.is_final() else None

    return wait_until(f"flow run {flow_run_id} to finish", probe, timeout, interval=0.5)


# -- the harness on a toy deployment (no OCR) ----------------------------------------------
def test_ui_run_form_and_resume_form_toy(live_server, ui, tmp_path):
    """Both typed forms work in this browser against this server, apart from any OCR."""
    started = time.monotonic()
    with served(live_server, [sys.executable, str(ROOT / "tests" / "ui_toy_flow.py")],
                "ui-toy/ui-toy", tmp_path / "serve.log") as deployment_id:
        ui.custom_run(str(deployment_id))
        ui.fill("Label", "ui-e2e")
        ui.choose("Kind", "claim_form")
        ui.fill("Threshold", "0.5")
        ui.shot("toy-run-form")
        ui.submit_run()
        ui.shot("toy-run-submitted")
        run_id = run_id_from_toast(ui)

        ui.wait_state(run_id, "Paused", timeout=60)
        ui.shot("toy-paused")
        ui.open_resume_form()
        ui.wait_text("Check the name")
        assert ui.field("Name").get_attribute("value") == "李四"  # prefilled
        ui.choose("Decision", "approve")
        ui.fill("Reviewer", "operator-7")
        ui.fill("Name", "王五")
        ui.shot("toy-resume-form")
        ui.submit_resume()
        ui.wait_state(run_id, "Completed", timeout=60)
        ui.shot("toy-completed")

    run = final_state(live_server, run_id)
    assert run.state.is_completed(), run.state
    assert run.parameters["batch"] == {"label": "ui-e2e", "kind": "claim_form",
                                       "threshold": 0.5}
    assert run_input(live_server, run_id) == {"decision": "approve", "reviewer": "operator-7",
                                              "name": "王五"}
    print(f"toy UI path in {time.monotonic() - started:.1f} s; screenshots: {ui.shots}")
