"""Access: servers bind to 127.0.0.1; the operators' Prefect server can require basic auth."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backoffice.settings import Settings, apply_environment

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_apply_environment_pins_loopback_and_passes_the_auth_string(monkeypatch, tmp_path):
    for key in ("PREFECT_SERVER_API_HOST", "PREFECT_SERVER_API_AUTH_STRING",
                "PREFECT_API_AUTH_STRING"):
        # setenv first so that monkeypatch removes what apply_environment sets: a leaked
        # auth string would lock every later test out of its Prefect server.
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    apply_environment(Settings(data_dir=tmp_path, prefect_auth_string="ops:s3cret"))
    assert os.environ["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert os.environ["PREFECT_SERVER_API_AUTH_STRING"] == "ops:s3cret"
    assert os.environ["PREFECT_API_AUTH_STRING"] == "ops:s3cret"


@pytest.mark.integration
@pytest.mark.slow
def test_prefect_server_with_auth_string_refuses_anonymous_requests(tmp_path):
    port = _free_port()
    auth = "operator:correct-horse-battery"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
    })
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port), "--no-ui", "--no-services"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=5) as client:
            while True:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                try:
                    if client.get(f"{api}/health").status_code == 200:  # open, by design
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "Prefect server did not start"
                time.sleep(0.5)
            anonymous = client.post(f"{api}/flows/filter", json={})
            assert anonymous.status_code == 401
            wrong = client.post(f"{api}/flows/filter", json={}, auth=("operator", "guess"))
            assert wrong.status_code == 401
            token = base64.b64encode(auth.encode()).decode()
            ok = client.post(f"{api}/flows/filter", json={},
                             headers={"Authorization": f"Basic {token}"})
            assert ok.status_code == 200 and ok.json() == []
        # Prefect's own client, configured as the README says (PREFECT_API_AUTH_STRING).
        code = ("import asyncio\nfrom prefect.client.orchestration import get_client\n"
                "async def main():\n    async with get_client() as c:\n"
                "        print(len(await c.read_flows()))\nasyncio.run(main())\n")
        client_env = {**env, "PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": auth}
        done = subprocess.run([sys.executable, "-c", code], env=client_env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr[-2000:]
        client_env.pop("PREFECT_API_AUTH_STRING")
        refused = subprocess.run([sys.executable, "-c", code], env=client_env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert refused.returncode != 0 and "401" in refused.stderr
        outside = _outside_address()
        if outside is not None:  # bound to loopback: not reachable on the machine's address
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://{outside}:{port}/api/health", timeout=3)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stderr.close()
