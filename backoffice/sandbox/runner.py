"""Start and stop the sandbox systems: uvicorn subprocesses on free 127.0.0.1 ports.

>>> with run_sandbox(tmp / "sandbox") as sandbox:            # doctest: +SKIP
...     sandbox.core.url, sandbox.claims.url
...     sandbox.set_faults(Faults(error_rate=0.2, drop_rate=0.05))
...     config = sandbox.targets_config()                    # targets.json, URLs filled in

The runner binds each listening socket itself (port 0: the kernel picks a free one) and
hands it to the child, so there is no race for ports; it then waits until ``/health``
answers. Children run in their own process group; :meth:`SystemServer.stop` terminates
them, and an ``atexit`` hook stops any the caller forgot.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backoffice.sandbox.common import Faults

_RUNNING: set[subprocess.Popen] = set()


def _stop_all() -> None:  # pragma: no cover - exit path
    for proc in list(_RUNNING):
        with contextlib.suppress(Exception):
            proc.terminate()
            proc.wait(3)


atexit.register(_stop_all)


class SandboxError(RuntimeError):
    pass


@dataclass
class SystemServer:
    """One running sandbox system."""

    system: str
    url: str
    db_path: Path
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            response = client.request(method, path, **kwargs)
            response.raise_for_status()
            return response.json()

    def set_faults(self, faults: Faults | dict[str, Any] | None) -> Faults:
        """Change the fault injection of this running system (``None``: no faults)."""
        faults = Faults.model_validate(faults or {}) if not isinstance(faults, Faults) else faults
        return Faults.model_validate(self._admin("PUT", "/admin/faults",
                                                 json=faults.model_dump()))

    def faults(self) -> Faults:
        return Faults.model_validate(self._admin("GET", "/admin/faults"))

    def stats(self) -> dict[str, Any]:
        """Injected faults so far and table row counts."""
        return self._admin("GET", "/admin/stats")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        _RUNNING.discard(self.process)


def _listening_socket(host: str, port: int) -> socket.socket:
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SandboxError("the sandbox binds to the loopback interface only")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def start_system(system: str, db_path: Path, *, faults: Faults | dict[str, Any] | None = None,
                 seed: bool = True, port: int = 0, startup_timeout: float = 60.0,
                 log_path: Path | None = None, host: str = "127.0.0.1",
                 fixtures: Path | None = None) -> SystemServer:
    """Start one system (``core`` or ``claims``) in a subprocess; return once it is healthy.

    ``seed``: fill its database first from the ground truth of the fixtures folder
    ``fixtures`` (default ``./fixtures``), so that it agrees with the demo's documents.
    """
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path or db_path.with_suffix(".log"))
    sock = _listening_socket(host, port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cmd = [sys.executable, "-m", "backoffice.sandbox.serve", system, "--db", str(db_path),
           "--fd", str(sock.fileno())]
    if seed:
        cmd += ["--seed-from", str(Path(fixtures or "fixtures").resolve())]
    if faults is not None:
        faults = Faults.model_validate(faults) if not isinstance(faults, Faults) else faults
        cmd += ["--faults", faults.model_dump_json()]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, pass_fds=[sock.fileno()], stdout=log,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
    sock.close()
    _RUNNING.add(proc)
    server = SystemServer(system, url, db_path, proc, log_path)
    deadline = time.monotonic() + startup_timeout
    with httpx.Client(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                _RUNNING.discard(proc)
                tail = log_path.read_text(errors="replace")[-2000:]
                raise SandboxError(f"{system} system exited with {proc.returncode}:\n{tail}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise SandboxError(f"{system} system did not become healthy in "
                                   f"{startup_timeout:.0f} s (log: {log_path})")
            time.sleep(0.1)


@dataclass
class Sandbox:
    """Both sandbox systems, running."""

    data_dir: Path
    core: SystemServer
    claims: SystemServer
    drop_dir: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.drop_dir is None:
            self.drop_dir = self.data_dir / "drop"

    @property
    def systems(self) -> dict[str, SystemServer]:
        return {"core": self.core, "claims": self.claims}

    def env(self) -> dict[str, str]:
        """Environment variables that point ``targets.json`` at this sandbox."""
        return {"BACKOFFICE_CORE_URL": self.core.url, "BACKOFFICE_CLAIMS_URL": self.claims.url,
                "BACKOFFICE_CORE_DB": str(self.core.db_path),
                "BACKOFFICE_DROP_DIR": str(self.drop_dir)}

    def set_faults(self, faults: Faults | dict[str, Any] | None) -> None:
        for server in self.systems.values():
            server.set_faults(faults)

    def stats(self) -> dict[str, Any]:
        return {name: server.stats() for name, server in self.systems.items()}

    def targets_config(self, path: Path | None = None, **overrides: Any):
        """The targets configuration (default: the packaged one) pointed at this sandbox.

        ``overrides`` are applied to every target (e.g. ``timeout_seconds=1``) where the
        target has such a setting.
        """
        from backoffice.connectors.config import load_targets

        config = load_targets(path, env=self.env())
        if overrides:
            for name, target in list(config.targets.items()):
                known = {k: v for k, v in overrides.items() if k in type(target).model_fields}
                config.targets[name] = target.model_copy(update=known)
        return config

    def write_targets(self, path: Path, **overrides: Any) -> Path:
        """Write the resolved targets configuration to ``path`` (for worker processes)."""
        path.write_text(self.targets_config(**overrides).model_dump_json(by_alias=True,
                                                                          indent=2))
        return path

    def lookup(self, timeout: float = 5.0):
        """A :class:`~validators.lookup.SystemLookup` over this sandbox's HTTP APIs."""
        from backoffice.lookup_rest import RestLookup

        return RestLookup(self.core.url, self.claims.url, timeout=timeout)

    def stop(self) -> None:
        for server in self.systems.values():
            server.stop()


def start_sandbox(data_dir: Path, *, faults: Faults | dict[str, Any] | None = None,
                  seed: bool = True, core_port: int = 0, claims_port: int = 0,
                  export_env: bool = False, fixtures: Path | None = None) -> Sandbox:
    """Start both systems with their databases under ``data_dir``; the caller stops them.

    ``export_env`` also sets :meth:`Sandbox.env` in ``os.environ`` (for the demo, so that
    ``targets.json`` and the CLI find the sandbox).
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    core = start_system("core", data_dir / "core.db", faults=faults, seed=seed, port=core_port,
                        fixtures=fixtures)
    try:
        claims = start_system("claims", data_dir / "claims.db", faults=faults, seed=seed,
                              port=claims_port, fixtures=fixtures)
    except BaseException:
        core.stop()
        raise
    sandbox = Sandbox(data_dir, core, claims)
    sandbox.drop_dir.mkdir(parents=True, exist_ok=True)
    if export_env:
        os.environ.update(sandbox.env())
    return sandbox


@contextlib.contextmanager
def run_sandbox(data_dir: Path, **kwargs: Any) -> Iterator[Sandbox]:
    """Both systems for the duration of a ``with`` block (see :func:`start_sandbox`)."""
    sandbox = start_sandbox(data_dir, **kwargs)
    try:
        yield sandbox
    finally:
        sandbox.stop()


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual use
    """Run both systems in the foreground until interrupted (``python -m ...runner DIR``)."""
    import argparse

    parser = argparse.ArgumentParser(description="Run the sandbox systems until Ctrl-C.")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--core-port", type=int, default=0)
    parser.add_argument("--claims-port", type=int, default=0)
    parser.add_argument("--faults", default=None, help="Fault settings as JSON.")
    args = parser.parse_args(argv)
    faults = json.loads(args.faults) if args.faults else None
    with run_sandbox(args.data_dir, faults=faults, core_port=args.core_port,
                     claims_port=args.claims_port) as sandbox:
        for key, value in sandbox.env().items():
            print(f"export {key}={value}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while sandbox.core.alive() and sandbox.claims.alive():
                time.sleep(1)


if __name__ == "__main__":  # pragma: no cover
    main()
