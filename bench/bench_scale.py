"""Scale-out benchmark: throughput against the number of readers, the orchestration
overhead per document, Prefect API calls per document, and the cost of a cold process.

    .venv/bin/python bench/bench_scale.py [--readers 1,2,4] [--fixtures fixtures]
                                          [--limit N] [--json]

Each row is a fresh cluster (``cli.scale_demo.Cluster``): a Prefect server on PostgreSQL,
the store on PostgreSQL with the originals in it, the work pool's process worker running
``process-inbox``, and N readers, each a separate process in its own folder. The OCR
threads are split between the readers (``cores // N``, at least 1). The same documents go
through every row:

- *documents/minute*: documents read between the first claim and the last outcome
  recorded in the store (the readers' steady state; the run's wall time includes intake
  and the flow run's start);
- *API calls/document*: requests the Prefect server answered during the run (its access
  log), over the documents; *server CPU ms/document*: the Prefect server process's CPU
  time during the run, over the documents;
- *overhead ms/document*: (readers' seconds per document × readers) − the bare
  ``extract`` seconds per document with the same threads per process, i.e. what
  orchestration, the store and the shared storage add to each document;
- *cold start*: what a fresh Python process pays before it reads its first document
  (interpreter, imports, the OCR models): what a process worker would pay per flow run
  if each document were its own flow run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from backoffice.settings import apply_environment

apply_environment()

from cli.scale_demo import Cluster, store_report

_EXTS = {".jpg", ".jpeg", ".png", ".pdf", ".tif", ".tiff"}


def documents(fixtures: Path, limit: int | None) -> list[Path]:
    files = sorted(p for name in ("idcards", "claims") for p in (fixtures / name).rglob("*")
                   if p.suffix.lower() in _EXTS)
    return files[:limit] if limit else files


def bare_seconds(files: list[Path], threads: int) -> float:
    """Median seconds per document of ``extract`` in one warm process (``threads``)."""
    code = """
import json, sys, time
from pathlib import Path
from backoffice.settings import apply_environment, get_settings
apply_environment()
from backoffice.processing import extract_file
from backoffice.runtime import get_recognizer
settings = get_settings()
rec = get_recognizer(settings)
files = [Path(p) for p in json.loads(sys.argv[1])]
extract_file(files[0], rec, settings)  # warm
times = []
for f in files:
    t = time.perf_counter(); extract_file(f, rec, settings); times.append(time.perf_counter() - t)
print(json.dumps(times))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    with tempfile.TemporaryDirectory() as tmp:
        env.update(BACKOFFICE_DATA_DIR=tmp, BACKOFFICE_OCR_CPU_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", code, json.dumps([str(f) for f in files])],
                             env=env, capture_output=True, text=True, check=True, timeout=3600)
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return sum(times) / len(times)


def cold_start_seconds(sample: Path, threads: int) -> float:
    """Wall seconds for a fresh process to start, load everything and read one document,
    minus the warm read of the same document."""
    code = f"""
import time
from pathlib import Path
from backoffice.settings import apply_environment, get_settings
apply_environment()
from backoffice.processing import extract_file
from backoffice.runtime import get_recognizer
settings = get_settings()
rec = get_recognizer(settings)
extract_file(Path({str(sample)!r}), rec, settings)
t = time.perf_counter(); extract_file(Path({str(sample)!r}), rec, settings)
print(time.perf_counter() - t)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    with tempfile.TemporaryDirectory() as tmp:
        env.update(BACKOFFICE_DATA_DIR=tmp, BACKOFFICE_OCR_CPU_THREADS=str(threads))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=600)
        wall = time.perf_counter() - t0
    warm = float(out.stdout.strip().splitlines()[-1])
    return wall - 2 * warm  # what is paid before the first document is read


def run_row(files: list[Path], readers: int, root: Path) -> dict:
    cores = os.cpu_count() or 2
    threads = max(1, cores // readers)
    cluster = Cluster(root=root / f"readers-{readers}", readers=readers, cpu_threads=threads,
                      access_log=True)
    with cluster:
        cluster.wait_for_readers()
        cluster.inbox.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            shutil.copy(f, cluster.inbox / f"{i:04d}-{f.name}")
        calls0, cpu0 = cluster.api_calls(), cluster.server_cpu_seconds()
        t0 = time.monotonic()
        run = cluster.run_inbox()
        wall = time.monotonic() - t0
        calls = cluster.api_calls() - calls0
        server_cpu = cluster.server_cpu_seconds() - cpu0
        report = store_report(cluster.store_url)
        flow = _flow_run_start(cluster, run["flow_run"])
    read = max(report["read"], 1)
    return {"readers": readers, "threads_per_reader": threads, "state": run["state"],
            "documents": report["read"], "seconds": report["seconds"],
            "per_minute": report["per_minute"], "wall_seconds": round(wall, 1),
            "api_calls": calls, "api_calls_per_document": round(calls / read, 1),
            "server_cpu_ms_per_document": round(1000 * server_cpu / read),
            "by_reader": report["by_reader"], "exactly_once": report["exactly_once"],
            "flow_run_start_seconds": flow}


def _flow_run_start(cluster: Cluster, flow_run_id: str) -> float | None:
    """Seconds from the run's creation to its start: the work pool's worker starting a
    fresh Python for it."""
    from datetime import datetime

    import httpx

    run = httpx.get(f"{cluster.server.api_url}/flow_runs/{flow_run_id}", timeout=10).json()
    if not run.get("start_time"):
        return None
    created = datetime.fromisoformat(run["created"])
    started = datetime.fromisoformat(run["start_time"])
    return round((started - created).total_seconds(), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", default="1,2,4")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "fixtures")
    parser.add_argument("--limit", type=int, default=None, help="At most N documents.")
    parser.add_argument("--root", type=Path, default=ROOT / "var" / "bench-scale")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = documents(args.fixtures.resolve(), args.limit)
    shutil.rmtree(args.root, ignore_errors=True)
    cores = os.cpu_count() or 2
    rows = [run_row(files, int(n), args.root) for n in args.readers.split(",")]
    bare = {t: bare_seconds(files, t) for t in sorted({r["threads_per_reader"] for r in rows})}
    cold = cold_start_seconds(files[0], cores)
    for row in rows:
        per_doc = 60.0 / row["per_minute"] * row["readers"] if row["per_minute"] else 0.0
        row["reader_seconds_per_document"] = round(per_doc, 3)
        row["bare_seconds_per_document"] = round(bare[row["threads_per_reader"]], 3)
        row["overhead_ms_per_document"] = round(1000 * (per_doc - bare[row["threads_per_reader"]]))
    result = {"documents": len(files), "cores": cores, "cold_start_seconds": round(cold, 2),
              "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(files)} documents (fixtures idcards + claims), {cores} cores; cold start of a "
          f"fresh process before its first document: {cold:.1f} s")
    print("| readers | threads each | documents/min | wall s | reader s/doc | bare s/doc "
          "| overhead ms/doc | API calls/doc | server CPU ms/doc | flow run start s "
          "| exactly once |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['readers']} | {r['threads_per_reader']} | {r['per_minute']} | "
              f"{r['wall_seconds']} | {r['reader_seconds_per_document']} | "
              f"{r['bare_seconds_per_document']} | {r['overhead_ms_per_document']} | "
              f"{r['api_calls_per_document']} | {r['server_cpu_ms_per_document']} | "
              f"{r['flow_run_start_seconds']} | "
              f"{'yes' if r['exactly_once'] else 'NO'} |")


if __name__ == "__main__":
    main()
