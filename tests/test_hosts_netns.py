"""Readers on other hosts, honestly: each in its own network namespace.

A bridge (the "LAN") joins the root namespace (the Prefect server, PostgreSQL and the
intake host's pool worker) to two namespaces, one per reading host, by veth pairs. The
readers reach the Prefect API and a PostgreSQL that listens on that network address only
(a throwaway cluster, not the machine's loopback one); they have their own folders and
no path of the intake host: documents come to them through the store. One reader is
killed with SIGKILL mid-document.

Needs root (namespaces, links); the CI machine runs as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import FIXTURES

from backoffice.runtime import db_engine
from cli.scale_demo import Cluster, store_report

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.ocr,
              pytest.mark.slow]

SUBNET = "10.213.{n}.{host}"


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def lan(hosts: int):
    """A bridge with the root namespace at .1 and ``hosts`` namespaces at .2, .3, …"""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("network namespaces need root and iproute2 (the CI machine has both)")
    tag = uuid.uuid4().hex[:5]
    n = int(tag, 16) % 200 + 20
    bridge, names = f"bo{tag}", [f"bo{tag}h{i}" for i in range(hosts)]
    gateway = SUBNET.format(n=n, host=1)
    try:
        _sh("ip", "link", "add", bridge, "type", "bridge")
        _sh("ip", "addr", "add", f"{gateway}/24", "dev", bridge)
        _sh("ip", "link", "set", bridge, "up")
        for i, ns in enumerate(names):
            outer, inner = f"v{tag}o{i}", f"v{tag}i{i}"
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _sh("ip", "link", "set", inner, "netns", ns)
            _sh("ip", "link", "set", outer, "master", bridge)
            _sh("ip", "link", "set", outer, "up")
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add",
                f"{SUBNET.format(n=n, host=i + 2)}/24", "dev", inner)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield gateway, names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL server programs (initdb) under /usr/lib/postgresql")
    return found[-1].parent


@contextlib.contextmanager
def postgres_on(address: str):
    """A throwaway PostgreSQL cluster listening on ``address`` only (trust auth for its
    /24), owned by the ``postgres`` user (a folder under /tmp it may enter); stopped and
    removed afterwards."""
    import tempfile

    from backoffice.server import free_port

    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="bo-netns-pg-"))
    data = root / "data"
    shutil.chown(root, "postgres")
    as_owner = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_owner, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                   timeout=120)
    net = address.rsplit(".", 1)[0] + ".0/24"
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {net} trust\n")
    port = free_port(address)
    subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-l",
                    str(root / "server.log"), "-w", "-t", "60", "-o",
                    (f"-p {port} -c listen_addresses={address} -c unix_socket_directories={root}"
                    " -c fsync=off -c max_connections=200"), "start"],
                   check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql://postgres@{address}:{port}/postgres"
    finally:
        subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, check=False, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_readers_in_their_own_network_namespaces(tmp_path):
    ids = sorted((FIXTURES / "idcards" / "photo").glob("*.*"))[:4]
    claims = sorted((FIXTURES / "claims" / "clean").glob("*.*"))[:4]
    with lan(2) as (gateway, namespaces), postgres_on(gateway) as pg:
        # The readers' hosts do not see the machine's loopback PostgreSQL or anything else.
        probe = subprocess.run(["ip", "netns", "exec", namespaces[0], "python3", "-c",
                                "import socket; socket.create_connection(('127.0.0.1', 5432), 2)"],
                               capture_output=True, check=False, timeout=30)
        assert probe.returncode != 0
        cluster = Cluster(root=tmp_path / "hosts", readers=2, pg_admin=pg,
                          server_host=gateway,
                          reader_prefix=lambda i: ["ip", "netns", "exec", namespaces[i]])
        with cluster:
            assert cluster.server.api_url.startswith(f"http://{gateway}:")
            cluster.wait_for_readers()
            cluster.inbox.mkdir(parents=True)
            for path in [*claims, *ids]:
                shutil.copy(path, cluster.inbox / path.name)
            outcome: dict = {}
            runner = threading.Thread(
                target=lambda: outcome.update(cluster.run_inbox(timeout=900)))
            runner.start()
            victim, _, _ = cluster.kill_a_reader_mid_document()
            runner.join(900)
            assert outcome.get("state") == "COMPLETED", outcome
            report = store_report(cluster.store_url)
            assert report["exactly_once"], report
            assert report["read"] == len(ids) + len(claims)
            survivor = next(p for p in cluster.reader_procs if p is not victim)
            assert any(name.endswith(f"-{survivor.pid}") for name in report["by_reader"])
            # The readers' hosts reached the server over the LAN, by its address.
            runs = httpx.post(f"{cluster.server.api_url}/task_runs/filter", json={
                "task_runs": {"name": {"like_": "process-document-"}}}, timeout=10).json()
            assert {r["state"]["type"] for r in runs} >= {"COMPLETED", "CRASHED"}
            db_engine.cache_clear()
