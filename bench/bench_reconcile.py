"""Customer-master reconciliation benchmark: N core records against N claims records.

    .venv/bin/python bench/bench_reconcile.py [--n 1000000] [--seed 7] [--regenerate]
                                              [--no-sqlite] [--json]

1. Generates (once per n and seed; in a child process), deterministically (numpy, one
   seed), two masters in CSV under ``var/bench/reconcile/n<n>_s<seed>/``: the core system's ``core.csv``
   (``id_number,name,birth_date,phone``, 18-digit numbers) and the claims system's
   ``claims.csv`` (``insured_id,name,birth_date,phone,policy_count``) with a realistic
   mix: about 60 % 18-digit and 40 % 15-digit numbers (the ``to_15`` of the core's, for
   people born in the 1900s), 2 % typos in the number (one digit changed or two
   adjacent digits swapped), 3 % name spelling variants (traditional characters, a
   space, another middle dot), 1 % birth-date disagreements, 2 % of each side missing on
   the other, duplicated claims records and core customers sharing a number (ambiguous).
2. Runs the job (``backoffice.reconcile_job.reconcile_files``: read both CSVs, reconcile,
   write the report) in a fresh Python process, so that neither the generator's memory
   nor its imports count: wall time of the job (loading included), the process's peak
   RSS (``ru_maxrss``, with ``VmHWM`` as a cross-check) and the counts per class.
3. For comparison times a plain SQLite join on the normalised key over the same files
   (``csv`` module + ``executemany`` into an in-memory database, the 17-digit key
   computed in SQL, an index on each side, one counting join), also in a fresh process.

The synthetic data are made up: no real person's number or name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from domain import gb11643

OUT_ROOT = ROOT / "var" / "bench" / "reconcile"
TIME_LIMIT_S = 20.0
MEMORY_LIMIT_MB = 1024.0

# Common surnames, several of which have a traditional form different from the simplified.
_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
    "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华国建文辉力军斌宇浩凯鹏飞鑫波红玲"
    "东海亮林俊峰晨雪梅琳颖佳欣怡婷倩婕雯晶燕萍志荣春晓云龙凤鸿博涛学成龄广义德贵长庆"
    "爱金玉兴发丹阳杨晖韬昊宏蕾瑶琦璐颜书诗梦婉岚蓉巍卫东红兵新民振华"
)
_UYGHUR = ["买买提", "艾力", "阿不都", "热合曼", "古丽", "努尔", "阿依", "吐尔逊", "帕提古丽",
           "迪丽", "热巴", "依明", "库尔班", "艾山", "玉素甫"]
_DOTS = ["•", ".", "‧", "．", "・"]


def _region_codes() -> np.ndarray:
    """County codes from python-stdnum's GB/T 2260 data (real codes, as people have)."""
    import stdnum

    codes: list[int] = []
    province = None
    for line in (Path(stdnum.__file__).parent / "cn" / "loc.dat").read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province = line.split()[0]
            continue
        county = line.split()[0]
        if province and len(county) == 4 and not county.endswith("00"):
            codes.append(int(province + county))
    return np.array(sorted(set(codes)), dtype=np.int64)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative integers, most significant first: (n, width)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def _check_chars(bodies: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check characters (uint8 ASCII) of 17-digit bodies."""
    check = gb11643.calc_check_values(_digits(bodies, 17))
    return np.where(check == 10, ord("X"), ord("0") + check).astype(np.uint8)


def _id_strings(bodies: np.ndarray, checks: np.ndarray, fifteen: np.ndarray) -> np.ndarray:
    """Build 18-digit (body + check) or 15-digit (century and check dropped) strings."""
    n = len(bodies)
    mat = np.zeros((n, 18), dtype=np.uint8)
    mat[:, :17] = (_digits(bodies, 17) + ord("0")).astype(np.uint8)
    mat[:, 17] = checks
    short = np.flatnonzero(fifteen)
    if len(short):
        m15 = np.concatenate([mat[short, :6], mat[short, 8:17]], axis=1)
        mat[short] = 0
        mat[short, :15] = m15
    return mat.view("S18").ravel().astype("U18").astype(object)


def _dates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Birth dates as yyyymmdd int64, 1930..2006 (some have no 15-digit form)."""
    start = np.datetime64("1930-01-01")
    span = int((np.datetime64("2006-12-31") - start).astype(int))
    return _yyyymmdd(start + rng.integers(0, span, n).astype("timedelta64[D]"))


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    years = days.astype("datetime64[Y]").astype(int) + 1970
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    return years * 10000 + months * 100 + dom


def _from_yyyymmdd(v: np.ndarray) -> np.ndarray:
    y, m, d = v // 10000, v // 100 % 100, v % 100
    months = (y - 1970) * 12 + (m - 1)
    return months.astype("datetime64[M]").astype("datetime64[D]") + (d - 1).astype("timedelta64[D]")


def _date_strings(v: np.ndarray) -> np.ndarray:
    return _from_yyyymmdd(v).astype("U10").astype(object)


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    sur = np.array(_SURNAMES, dtype=object)[rng.integers(0, len(_SURNAMES), n)]
    given = np.array(_GIVEN, dtype=object)
    g1 = given[rng.integers(0, len(given), n)]
    g2 = np.where(rng.random(n) < 0.7, given[rng.integers(0, len(given), n)], "")
    names = sur + g1 + g2
    dotted = np.flatnonzero(rng.random(n) < 0.01)
    uy = np.array(_UYGHUR, dtype=object)
    names[dotted] = (uy[rng.integers(0, len(uy), len(dotted))] + "·"
                     + uy[rng.integers(0, len(uy), len(dotted))])
    return names


def _people(rng: np.random.Generator, n: int, regions: np.ndarray) -> dict[str, np.ndarray]:
    birth = _dates(rng, n)
    bodies = (regions[rng.integers(0, len(regions), n)] * 10**11 + birth * 1000
              + rng.integers(0, 1000, n))
    phones = 13000000000 + rng.integers(0, 10**9, n) + 10**9 * rng.integers(0, 7, n)
    return {"body": bodies, "birth": birth, "name": _names(rng, n), "phone": phones}


def _name_variants(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    """The same names as another system spells them (traditional, spaces, other dots)."""
    import opencc

    s2t = opencc.OpenCC("s2t")
    out = names.copy()
    for i, name in enumerate(names):
        if "·" in name:
            out[i] = name.replace("·", _DOTS[rng.integers(0, len(_DOTS))])
            continue
        trad = s2t.convert(name)
        if trad != name and rng.random() < 0.7:
            out[i] = trad
        elif rng.random() < 0.5:
            out[i] = name[0] + " " + name[1:]
        else:
            out[i] = " " + name + "　"  # a full-width space from a Chinese input method
    return out


def _typos(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """One digit changed (2/3) or two adjacent digits swapped (1/3), never a no-op."""
    out = ids.copy()
    for i, number in enumerate(ids):
        chars = list(number)
        body = len(chars) - 1 if len(chars) == 18 else len(chars)
        while True:
            p = int(rng.integers(0, body - 1))
            trial = chars[:]
            if rng.random() < 1 / 3:
                trial[p], trial[p + 1] = trial[p + 1], trial[p]
            else:
                trial[p] = str((int(trial[p]) + int(rng.integers(1, 10))) % 10)
            if trial != chars:
                out[i] = "".join(trial)
                break
    return out


def generate_masters(n: int, out_dir: Path, seed: int = 7) -> dict:
    """Write core.csv and claims.csv with about n records each; return what was planted."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    regions = _region_codes()
    core = _people(rng, n, regions)
    n_core = n
    # Core customers sharing a number: a second customer record with the same 17-digit
    # body (a duplicate customer, sometimes with a check-digit slip): ambiguous.
    twins = np.sort(rng.choice(n_core, size=max(1, n // 1000), replace=False))
    core_checks = _check_chars(core["body"])
    core_ids = _id_strings(core["body"], core_checks, np.zeros(n_core, bool))
    twin_checks = core_checks[twins].copy()
    slip = rng.random(len(twins)) < 0.5
    twin_checks[slip] = np.where(twin_checks[slip] == ord("0"), ord("1"), ord("0"))
    twin_ids = _id_strings(core["body"][twins], twin_checks, np.zeros(len(twins), bool))
    core_phone = core["phone"].astype(object)
    core_phone[rng.random(n_core) < 0.03] = ""
    core_df = pd.DataFrame({
        "id_number": np.concatenate([core_ids, twin_ids]),
        "name": np.concatenate([core["name"], core["name"][twins]]),
        "birth_date": np.concatenate([_date_strings(core["birth"]),
                                      _date_strings(core["birth"][twins])]),
        "phone": np.concatenate([core_phone, core_phone[twins]]),
    })
    # Claims: 98 % of the core customers (not the twins' originals: keep them simple).
    present = rng.random(n_core) >= 0.02
    present[twins] = True
    idx = np.flatnonzero(present)
    m = len(idx)
    bodies = core["body"][idx]
    birth_col = core["birth"][idx].copy()
    names = core["name"][idx].copy()
    in_1900s = (core["birth"][idx] // 10000) < 2000
    fifteen = (rng.random(m) < 0.40 / 0.91) & in_1900s  # ~91 % are born in the 1900s
    ids = _id_strings(bodies, core_checks[idx], fifteen)
    typo = np.flatnonzero(rng.random(m) < 0.02)
    ids[typo] = _typos(rng, ids[typo])
    variant = np.flatnonzero(rng.random(m) < 0.03)
    names[variant] = _name_variants(rng, names[variant])
    other_name = np.flatnonzero(rng.random(m) < 0.002)  # a different name: a real mismatch
    names[other_name] = _names(rng, len(other_name))
    shifted = np.flatnonzero(rng.random(m) < 0.01)
    birth_col[shifted] = _yyyymmdd(_from_yyyymmdd(birth_col[shifted])
                                   + rng.integers(1, 400, len(shifted)).astype("timedelta64[D]"))
    phone = np.where(rng.random(m) < 0.5, core["phone"][idx].astype(object), "")
    wrong_phone = np.flatnonzero((rng.random(m) < 0.005) & (phone != ""))
    phone[wrong_phone] = (13900000000 + rng.integers(0, 10**8, len(wrong_phone))).astype(object)
    claims = {
        "insured_id": ids, "name": names, "birth_date": _date_strings(birth_col),
        "phone": phone, "policy_count": rng.integers(1, 6, m),
    }
    # Claims-only insured persons (missing in the core), 2 % of n.
    extra = _people(rng, max(1, n // 50), regions)
    k = len(extra["body"])
    extra_15 = (rng.random(k) < 0.4) & ((extra["birth"] // 10000) < 2000)
    extra_cols = {
        "insured_id": _id_strings(extra["body"], _check_chars(extra["body"]), extra_15),
        "name": extra["name"], "birth_date": _date_strings(extra["birth"]),
        "phone": np.where(rng.random(k) < 0.5, extra["phone"].astype(object), ""),
        "policy_count": rng.integers(1, 6, k),
    }
    # Duplicated claims records (the same insured entered twice, once with the old
    # 15-digit number): ambiguous.
    clean = np.setdiff1d(np.arange(m), typo)
    dup = np.sort(rng.choice(clean, size=max(1, n // 500), replace=False))
    dup_ids = _id_strings(bodies[dup], core_checks[idx[dup]], ~fifteen[dup] & in_1900s[dup])
    dup_cols = {"insured_id": dup_ids, "name": names[dup],
                "birth_date": claims["birth_date"][dup], "phone": phone[dup],
                "policy_count": claims["policy_count"][dup]}
    claims_df = pd.DataFrame({c: np.concatenate([claims[c], extra_cols[c], dup_cols[c]])
                              for c in claims})
    claims_df = claims_df.iloc[rng.permutation(len(claims_df))]
    out_dir.mkdir(parents=True, exist_ok=True)
    core_df.to_csv(out_dir / "core.csv", index=False)
    claims_df.to_csv(out_dir / "claims.csv", index=False)
    planted = {
        "core_rows": len(core_df), "claims_rows": len(claims_df),
        "core_twins": len(twins), "missing_in_claims": int(n_core - present.sum()),
        "missing_in_core": k, "claims_duplicates": len(dup),
        "fifteen_digit_share": round(float((claims_df["insured_id"].str.len() == 15).mean()), 3),
        "typos": len(typo), "name_variants": len(variant),
        "other_names": len(other_name), "birth_date_shifts": len(shifted),
        "wrong_phones": len(wrong_phone), "seed": seed,
    }
    (out_dir / "planted.json").write_text(json.dumps(planted, indent=2))
    return planted


# --- measurement, each in a fresh process ------------------------------------------

# Peak memory of a child: ru_maxrss, and the kernel's high-water mark of its own address
# space (VmHWM) as a cross-check. ru_maxrss also counts what the parent held when it
# forked, so the parent generates nothing itself: generation runs in a child too.
_HWM = """
def _vm_hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_GEN_CHILD = """
import json, sys
from pathlib import Path
from bench.bench_reconcile import generate_masters
print(json.dumps(generate_masters(int(sys.argv[1]), Path(sys.argv[2]), seed=int(sys.argv[3]))))
"""

_JOB_CHILD = _HWM + """
import json, resource, sys, time
t0 = time.perf_counter()
from backoffice.reconcile_job import reconcile_files
t1 = time.perf_counter()
report = reconcile_files(sys.argv[1], sys.argv[2], sys.argv[3])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "job_s": t2 - t1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vm_hwm_mb": _vm_hwm_mb(), "summary": report.summary}))
"""

_SQLITE_CHILD = _HWM + r"""
import csv, json, resource, sqlite3, sys, time
t0 = time.perf_counter()
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE core (id TEXT, name TEXT, birth_date TEXT, phone TEXT)")
db.execute("CREATE TABLE claims (id TEXT, name TEXT, birth_date TEXT, phone TEXT, n INT)")
for table, path, ncol in (("core", sys.argv[1], 4), ("claims", sys.argv[2], 5)):
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        db.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * ncol)})", rows)
t1 = time.perf_counter()
# The normalised key: the 17-digit body of the 18-digit form (a 15-digit number gets
# the century 19), as an integer.
key = ("CAST(CASE length(id) WHEN 15 THEN substr(id,1,6)||'19'||substr(id,7,9) "
       "ELSE substr(id,1,17) END AS INTEGER)")
db.execute(f"ALTER TABLE core ADD COLUMN k INTEGER")
db.execute(f"ALTER TABLE claims ADD COLUMN k INTEGER")
db.execute(f"UPDATE core SET k = {key}")
db.execute(f"UPDATE claims SET k = {key}")
db.execute("CREATE INDEX core_k ON core(k)")
db.execute("CREATE INDEX claims_k ON claims(k)")
joined, same_name = db.execute(
    "SELECT count(*), sum(c.name = m.name) FROM core c JOIN claims m ON c.k = m.k").fetchone()
only_core = db.execute(
    "SELECT count(*) FROM core c WHERE NOT EXISTS (SELECT 1 FROM claims m WHERE m.k = c.k)"
).fetchone()[0]
only_claims = db.execute(
    "SELECT count(*) FROM claims m WHERE NOT EXISTS (SELECT 1 FROM core c WHERE c.k = m.k)"
).fetchone()[0]
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "join_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vm_hwm_mb": _vm_hwm_mb(), "joined_pairs": joined, "same_name": same_name,
                  "core_without_claims": only_core, "claims_without_core": only_claims}))
"""


def _child(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records per master")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the CSVs even if they exist for this n and seed")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    work = OUT_ROOT / f"n{args.n}_s{args.seed}"
    core_csv, claims_csv = work / "core.csv", work / "claims.csv"
    if args.regenerate or not (core_csv.exists() and claims_csv.exists()
                               and (work / "planted.json").exists()):
        t0 = time.perf_counter()
        planted = _child(_GEN_CHILD, str(args.n), str(work), str(args.seed))
        planted.pop("process_wall_s")
        print(f"generated {planted['core_rows']:,} core and {planted['claims_rows']:,} claims "
              f"records in {time.perf_counter() - t0:.1f} s under {work}", file=sys.stderr)
    else:
        planted = json.loads((work / "planted.json").read_text())
    sizes_mb = (core_csv.stat().st_size + claims_csv.stat().st_size) / 2**20

    job = _child(_JOB_CHILD, str(core_csv), str(claims_csv), str(work / "report"))
    sqlite = None if args.no_sqlite else _child(_SQLITE_CHILD, str(core_csv), str(claims_csv))
    summary = job["summary"]
    result = {"n": args.n, "csv_mb": round(sizes_mb, 1), "planted": planted, "job": job,
              "sqlite_join": sqlite, "cpus": os.cpu_count(),
              "meets_time": job["job_s"] < TIME_LIMIT_S,
              "meets_memory": job["peak_rss_mb"] < MEMORY_LIMIT_MB}
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0 if result["meets_time"] and result["meets_memory"] else 1

    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"reconcile {summary['core_rows']:,} core × {summary['claims_rows']:,} "
              f"claims records ({sizes_mb:.0f} MB of CSV, {os.cpu_count()} cores)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("limit", justify="right")
    t.add_row("job wall time, loading included", f"{job['job_s']:.1f} s", f"< {TIME_LIMIT_S:.0f} s")
    for stage, seconds in summary["timings"].items():
        t.add_row(f"  {stage}", f"{seconds:.2f} s", "")
    t.add_row("process wall time (with imports)", f"{job['process_wall_s']:.1f} s", "")
    t.add_row("peak RSS of the job's process (ru_maxrss)", f"{job['peak_rss_mb']:.0f} MB",
              f"< {MEMORY_LIMIT_MB:.0f} MB")
    t.add_row("  cross-check: VmHWM", f"{job['vm_hwm_mb']:.0f} MB", "")
    if sqlite:
        t.add_row("plain SQLite join on the key, loading included", f"{sqlite['total_s']:.1f} s", "")
        t.add_row("  of which loading", f"{sqlite['load_s']:.1f} s", "")
        t.add_row("  peak RSS (in-memory database)", f"{sqlite['peak_rss_mb']:.0f} MB", "")
    console.print(t)

    c = Table(title="counts per class")
    c.add_column("class")
    c.add_column("outcomes", justify="right")
    c.add_column("core rows", justify="right")
    c.add_column("claims rows", justify="right")
    for name, row in summary["classes"].items():
        c.add_row(name, f"{row['outcomes']:,}", f"{row['core_rows']:,}", f"{row['claims_rows']:,}")
    c.add_row("total", f"{sum(r['outcomes'] for r in summary['classes'].values()):,}",
              f"{summary['core_rows']:,}", f"{summary['claims_rows']:,}")
    console.print(c)
    console.print("mismatched fields:", summary["mismatch_fields"])
    console.print("invalid claims numbers:", summary["invalid_claims_numbers"])
    console.print("planted:", planted)
    if sqlite:
        console.print("SQLite join:", {k: sqlite[k] for k in ("joined_pairs", "same_name",
                      "core_without_claims", "claims_without_core")})
    ok = result["meets_time"] and result["meets_memory"]
    console.print("[green]meets both limits[/green]" if ok else "[red]misses a limit[/red]")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
