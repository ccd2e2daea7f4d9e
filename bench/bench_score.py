"""`troth score` benchmark: the full CLI, the Ibis feature table, and the pandas reference.

Run as `python bench/bench_score.py` (defaults: 1,000,000 customers, 1 month of history). The
demo generator makes about 22 events per customer in its shortest period (one month), so 1M
customers is about 22M events, not the 10M the issue names; `--customers 450000` gives ~10M.

Steps, each in a fresh process so its peak RSS (from wait4) is its own:
1. Build, once, a database keyed by the parameters and a hash of the generator's source, under
   $TROTH_BENCH_CACHE (default /tmp/troth-bench): `troth generate`, `troth import`, identity
   resolution. Then a subsample database: every event of ~1 in N customers (~2M events).
2. (a) `troth score --as-of <end of data>` on a copy of the cached database; then the same
   scoring through `Engine.score` on a fresh copy, timing each progress step it reports.
   (b) the Ibis feature table (`customer_features` over `events_with_customer`) fetched as Arrow,
   on the full data and on the subsample.
   (c) the pandas reference (`load_events`, `reference_features`) on the subsample, and on the
   full data when its extrapolated memory and time fit this machine (`--pandas-full`).
3. Check that Ibis and pandas agree on 10,000 random customers, then write (or, with --append,
   add to) bench/results/score.md.
Workers print one JSON line; the orchestrator reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

from troth.demo.period import DEFAULT_END

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "score.md"
CACHE = Path(os.environ.get("TROTH_BENCH_CACHE", "/tmp/troth-bench"))
TROTH = Path(sys.executable).parent / "troth"
GOAL_SECONDS, GOAL_RATIO = 15.0, 10.0
SAMPLE_CUSTOMERS = 10_000
SUBSAMPLE_EVENTS = 2_000_000
PANDAS_SECONDS_LIMIT = 900.0


@dataclass
class Run:
    """One measured process: wall seconds, peak RSS in MB, and the JSON it printed (if any)."""

    label: str
    seconds: float
    peak_mb: float
    report: dict


def _ram_mb(field: str) -> float:
    """Return a /proc/meminfo field (MemTotal, MemAvailable) in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/meminfo")


def measure(label: str, cmd: list[str], cwd: Path = CACHE, timeout: float = 3600.0) -> Run:
    """Run `cmd` in a fresh process; return its wall time and peak RSS; kill it past the limits."""
    # Leave room for the other processes on the machine: kill past 80% of the RAM free now.
    limit_mb = 0.8 * _ram_mb("MemAvailable")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        status_file = Path(f"/proc/{proc.pid}/status")
        killed = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _rss_mb(status_file)
            if not killed and (rss > limit_mb or time.perf_counter() - started > timeout):
                killed = f"killed at {rss:,.0f} MB RSS after {time.perf_counter() - started:.0f} s"
                proc.kill()
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{label}: {' '.join(cmd)} failed {killed}\n{stdout}\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    report = json.loads(stdout) if stdout.lstrip().startswith("{") else {}
    report = json.loads(lines[-1]) if lines and not report else report
    run = Run(label, seconds, usage.ru_maxrss / 1024, report)
    print(f"{label:60s} {run.seconds:8.1f} s {run.peak_mb:9,.0f} MB", flush=True)
    return run


def _rss_mb(status_file: Path) -> float:
    """Return a live process's resident set in MB (0 once it has exited)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _worker(kind: str, *args: str) -> list[str]:
    """Return the command line that runs one worker of this script."""
    return [sys.executable, str(Path(__file__).resolve()), "worker", kind, *args]


def _generator_hash() -> str:
    """Return a short hash of the demo generator's source: the cache key changes with it."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "troth" / "demo").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def build(customers: int, months: int, seed: int) -> tuple[Path, dict]:
    """Return the cached database for these parameters and its manifest, building it if needed."""
    key = f"score-c{customers}-m{months}-s{seed}-g{_generator_hash()}"
    db_path, manifest_path = CACHE / f"{key}.duckdb", CACHE / f"{key}.json"
    if db_path.exists() and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        return db_path, {**manifest, "cached": True}
    CACHE.mkdir(parents=True, exist_ok=True)
    parquet, building = CACHE / f"{key}.parquet", CACHE / f"{key}.building.duckdb"
    for stale in (building, building.with_name(building.name + ".wal")):
        stale.unlink(missing_ok=True)
    options = f"--customers {customers} --months {months} --seed {seed} --json".split()
    gen = measure(
        "build: troth generate",
        [str(TROTH), "generate", "--out", str(parquet), *options],
        timeout=7200,
    )
    imp = measure(
        "build: troth import (resolves identities too)",
        [str(TROTH), "import", str(parquet), "--db", str(building), "--json"],
        timeout=7200,
    )
    res = measure(
        "build: resolve check, checkpoint", _worker("resolve", str(building)), timeout=7200
    )
    building.rename(db_path)
    parquet.unlink()
    parquet.with_suffix(".truth.parquet").unlink(missing_ok=True)
    manifest = {
        "built_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "customers_generated": gen.report["customers"],
        "events": imp.report["inserted"],
        "rejected": imp.report["rejected"],
        "months": months,
        "seed": seed,
        "as_of": f"{DEFAULT_END:%Y-%m-%d}",
        **res.report,
        "steps": {r.label: [round(r.seconds, 1), round(r.peak_mb)] for r in (gen, imp, res)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return db_path, {**manifest, "cached": False}


def build_subsample(source: Path, events: int) -> tuple[Path, dict]:
    """Return a cached database holding every event of ~1 in N customers of `source`."""
    per_mille = max(1, min(1000, round(1000 * SUBSAMPLE_EVENTS / events)))
    path = source.with_name(source.stem + f".sub{per_mille}.duckdb")
    manifest_path = path.with_suffix(".json")
    if path.exists() and manifest_path.exists():
        return path, {**json.loads(manifest_path.read_text()), "cached": True}
    building = path.with_name(path.stem + ".building.duckdb")
    building.unlink(missing_ok=True)
    run = measure(
        "build: subsample database",
        _worker("subsample", str(source), str(building), str(per_mille)),
    )
    building.rename(path)
    manifest = {**run.report, "per_mille": per_mille, "seconds": round(run.seconds, 1)}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return path, {**manifest, "cached": False}


def main() -> None:
    """Build (or reuse) the data, run every measurement, check agreement, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pandas-full", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true", help="add to the results file")
    args = parser.parse_args()
    started_at, load_before = datetime.now(UTC), os.getloadavg()
    db_path, data = build(args.customers, args.months, args.seed)
    sub_path, sub = build_subsample(db_path, data["events"])
    as_of = data["as_of"]
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="score-", dir=CACHE) as tmp:
        work = Path(tmp)
        copy = work / "score.duckdb"
        shutil.copyfile(db_path, copy)
        runs["cli"] = measure(
            "(a) troth score (full CLI), full data",
            [str(TROTH), "score", "--db", str(copy), "--as-of", as_of, "--json"],
            work,
        )
        shutil.copyfile(db_path, copy)  # start again from the unscored database
        runs["steps"] = measure(
            "(a) troth score steps (engine.score), full data",
            _worker("steps", str(copy), as_of),
            work,
        )
        copy.unlink()
        for name, path in (("ibis", db_path), ("ibis_sub", sub_path)):
            out = work / f"{name}.parquet"
            runs[name] = measure(
                f"(b) Ibis feature table, {'subsample' if 'sub' in name else 'full data'}",
                _worker("ibis", str(path), as_of, str(out)),
                work,
            )
        runs["pandas_sub"] = measure(
            "(c) pandas reference, subsample",
            _worker("pandas", str(sub_path), as_of, str(work / "pandas_sub.parquet")),
            work,
            PANDAS_SECONDS_LIMIT,
        )
        scale = data["events"] / sub["events"]
        predicted_mb = runs["pandas_sub"].peak_mb * scale
        predicted_s = runs["pandas_sub"].seconds * scale
        fits = predicted_mb < 0.6 * _ram_mb("MemAvailable") and predicted_s < PANDAS_SECONDS_LIMIT
        if args.pandas_full == "always" or (args.pandas_full == "auto" and fits):
            runs["pandas"] = measure(
                "(c) pandas reference, full data",
                _worker("pandas", str(db_path), as_of, str(work / "pandas.parquet")),
                work,
                2 * PANDAS_SECONDS_LIMIT,
            )
        agreement = compare(work, SAMPLE_CUSTOMERS)
    text = write_report(
        args.results,
        args.append,
        {
            "started_at": started_at,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "ram_mb": _ram_mb("MemTotal"),
            "platform": platform.platform(),
            "cores": os.cpu_count(),
            "data": data,
            "sub": sub,
            "runs": runs,
            "scale": scale,
            "predicted": (predicted_s, predicted_mb),
            "agreement": agreement,
            "goal": (GOAL_SECONDS, GOAL_RATIO),
        },
    )
    print(text)
    if not agreement["agree"]:
        raise SystemExit("Ibis and pandas feature tables disagree: see " + str(args.results))


def _when(text: str) -> datetime:
    """Return an --as-of date as midnight UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def resolve_worker(path: str) -> dict:
    """Resolve what is left unresolved at `path`; return counts and the newest event time."""
    from troth.identity.runner import identities_stale, resolve_identities
    from troth.store import open_database

    db = open_database(path)
    try:
        summary = resolve_identities(db)
        db.checkpoint()
        newest = db.cursor().execute("SELECT max(timestamp) FROM events").fetchone()[0]
        stale = identities_stale(db)
    finally:
        db.close()
    return {
        "customers": summary.customers,
        "identifiers": summary.identifiers,
        "newest_event": newest.isoformat(),
        "stale_after_resolve": stale,
    }


def subsample_worker(source: str, target: str, per_mille: str) -> dict:
    """Copy every event and identifier of ~per_mille/1000 of the customers into `target`."""
    from troth.store import open_database

    db = open_database(target)
    try:
        con = db.connection
        con.execute(f"ATTACH '{source}' AS big (READ_ONLY)")
        con.execute(
            "CREATE TEMP TABLE keep AS SELECT * FROM big.identifiers "
            f"WHERE hash(customer_id) % 1000 < {int(per_mille)}"
        )
        con.execute("INSERT INTO identifiers BY NAME SELECT * FROM keep")
        # The same node rule as load_events and events_with_customer.
        con.execute(
            "INSERT INTO events BY NAME SELECT e.* EXCLUDE (seq) FROM big.events e JOIN keep k "
            "ON k.node = CASE WHEN e.user_id IS NULL THEN 'anonymous_id:' || e.anonymous_id "
            "ELSE 'user_id:' || e.user_id END"
        )
        con.execute("DETACH big")
        db.checkpoint()
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        customers = con.execute("SELECT count(DISTINCT customer_id) FROM identifiers").fetchone()
    finally:
        db.close()
    return {"events": events, "customers": customers[0]}


def steps_worker(path: str, as_of: str) -> dict:
    """Score as `troth score` does; return the seconds to each progress step it reports."""
    from troth.config import Settings
    from troth.engine import Engine

    started = time.perf_counter()
    engine = Engine.open(Settings(), path)
    marks = [("open the database", 0.0)]
    try:
        engine.score(
            _when(as_of), progress=lambda s: marks.append((s, time.perf_counter() - started))
        )
    finally:
        engine.close()  # its final CHECKPOINT is part of the run
    marks.append(("(end)", time.perf_counter() - started))
    return {"steps": [(step, end - at) for (step, at), (_, end) in pairwise(marks)]}


def ibis_worker(path: str, as_of: str, out: str) -> dict:
    """Fetch the Ibis feature table as Arrow; return seconds from opening the database."""
    import pyarrow.parquet as pq

    from troth.engagement import customer_features
    from troth.identity import events_with_customer
    from troth.store import open_database

    started = time.perf_counter()
    db = open_database(path, read_only=True)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        expr = customer_features(events, _when(as_of))
        table = db.cursor().execute(session.sql(expr)).to_arrow_table()
    seconds = time.perf_counter() - started
    db.close()
    pq.write_table(table, out)
    return {"compute_s": seconds, "rows": table.num_rows}


def pandas_worker(path: str, as_of: str, out: str) -> dict:
    """Run load_events and reference_features; return the seconds of each."""
    from tests.engagement.reference_features import load_events, reference_features
    from troth.store import open_database

    started = time.perf_counter()
    db = open_database(path, read_only=True)
    events = load_events(db)
    db.close()
    loaded = time.perf_counter()
    features = reference_features(events, _when(as_of))
    done = time.perf_counter()
    rows = len(events)
    del events
    features.rename_axis("customer_id").reset_index().to_parquet(out)
    return {"load_s": loaded - started, "compute_s": done - loaded, "events": rows}


def _same(left: object, right: object) -> bool:
    """Return True when two feature columns hold the same values (floats within 1e-9)."""
    import numpy as np
    import pandas as pd

    if isinstance(left.dtype, pd.DatetimeTZDtype) or isinstance(right.dtype, pd.DatetimeTZDtype):
        a, b = pd.to_datetime(left, utc=True), pd.to_datetime(right, utc=True)
        return bool(((a == b) | (a.isna() & b.isna())).all())
    return bool(
        np.allclose(left.astype(float), right.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True)
    )


def compare(work: Path, size: int) -> dict:
    """Return whether the Ibis and pandas feature tables agree on `size` random customers."""
    import numpy as np
    import pandas as pd

    from troth.engagement import FEATURE_DOCS

    frames = {
        path.stem: pd.read_parquet(path).set_index("customer_id") for path in work.glob("*.parquet")
    }
    columns = [column for column in FEATURE_DOCS if column != "customer_id"]
    checked = [column for column in columns if column in frames["pandas_sub"].columns]
    problems = []
    pairs = [("ibis_sub", "pandas_sub"), ("ibis", "pandas_sub")]
    if "pandas" in frames:
        pairs.append(("ibis", "pandas"))
    rng = np.random.default_rng(13)
    for left_name, right_name in pairs:
        left, right = frames[left_name], frames[right_name]
        if right_name == "pandas_sub":
            left = left[left.index.isin(right.index)]
        if set(left.index) != set(right.index):
            problems.append(f"{left_name} and {right_name} hold different customers")
            continue
        sample = rng.choice(right.index.to_numpy(), size=min(size, len(right)), replace=False)
        problems += [
            f"{left_name} vs {right_name}: {column}"
            for column in checked
            if not _same(left[column].reindex(sample), right[column].reindex(sample))
        ]
    return {
        "agree": not problems,
        "problems": problems,
        "pairs": pairs,
        "sample": size,
        "checked": len(checked),
        "missing": [column for column in columns if column not in checked],
    }


def _yes(met: bool) -> str:
    """Return a goal verdict."""
    return "**met**" if met else "**not met**"


def write_report(path: Path, append: bool, info: dict) -> str:
    """Write the run's figures to `path` as markdown; return the text."""
    import duckdb
    import ibis
    import pandas as pd

    data, sub, runs, agreement = info["data"], info["sub"], info["runs"], info["agreement"]
    goal_s, goal_ratio = info["goal"]
    steps = data["steps"]
    build_s = sum(seconds for seconds, _ in steps.values())
    built = "reused from the cache" if data["cached"] else "built in this run"
    ibis_full, ibis_sub, pandas_sub = runs["ibis"], runs["ibis_sub"], runs["pandas_sub"]
    pandas_s = pandas_sub.report["load_s"] + pandas_sub.report["compute_s"]
    scale = info["scale"]
    predicted_s, predicted_mb = info["predicted"]
    lines = [
        f"# `troth score`: {data['customers_generated']:,} customers, "
        f"{data['events'] / 1e6:.1f}M events",
        "",
        f"Run {info['started_at']:%Y-%m-%d %H:%M} UTC on {info['platform']}, {info['cores']} "
        f"cores, {info['ram_mb'] / 1024:.0f} GB RAM; DuckDB {duckdb.__version__}, Ibis "
        f"{ibis.__version__}, pandas {pd.__version__}. Load average (1/5/15 min) "
        f"{'/'.join(f'{x:.1f}' for x in info['load_before'])} before, "
        f"{'/'.join(f'{x:.1f}' for x in info['load_after'])} after: other work on the machine "
        "makes the timings noisy. Each figure is one fresh process; peak RSS from wait4.",
        "",
        "## Data",
        "",
        f"`troth generate --customers {data['customers_generated']} --months {data['months']} "
        f"--seed {data['seed']}` (one month is the generator's shortest period, about "
        f"{data['events'] / data['customers_generated']:.0f} events per customer), then "
        f"`troth import` and identity resolution; {built} (built {data['built_at']}). "
        f"Scored as of {data['as_of']}; the newest event is {data['newest_event']}.",
        "",
        "| | |",
        "|---|---:|",
        f"| customers generated | {data['customers_generated']:,} |",
        f"| customers after identity resolution | {data['customers']:,} |",
        f"| events | {data['events']:,} |",
        *(f"| {label} (s / peak MB) | {sec:.1f} / {mb:,} |" for label, (sec, mb) in steps.items()),
        f"| build total (s) | {build_s:.1f} |",
        f"| subsample: every event of {sub['per_mille']} in 1,000 customers (by hash) | "
        f"{sub['customers']:,} customers, {sub['events']:,} events |",
        "",
        "## Measurements",
        "",
        "Wall is the whole process (interpreter start and imports included); work is the timed "
        "part inside it (opening the database to holding the result).",
        "",
        "| run | data | wall s | work s | peak RSS MB |",
        "|---|---|---:|---:|---:|",
        f"| (a) `troth score` CLI, every step (below) | full | "
        f"{runs['cli'].seconds:.1f} | | {runs['cli'].peak_mb:,.0f} |",
    ]
    for label, run in (("full", ibis_full), ("subsample", ibis_sub)):
        lines.append(
            f"| (b) Ibis `customer_features` fetched as Arrow | {label} | {run.seconds:.1f} | "
            f"{run.report['compute_s']:.1f} | {run.peak_mb:,.0f} |"
        )
    pandas_runs = [("subsample", pandas_sub)] + (
        [("full", runs["pandas"])] if "pandas" in runs else []
    )
    for label, run in pandas_runs:
        load, compute = run.report["load_s"], run.report["compute_s"]
        lines += [
            f"| (c) pandas `load_events` | {label} | | {load:.1f} | |",
            f"| (c) pandas `reference_features` | {label} | | {compute:.1f} | |",
            f"| (c) pandas, both | {label} | {run.seconds:.1f} | {load + compute:.1f} | "
            f"{run.peak_mb:,.0f} |",
        ]
    if "pandas" not in runs:
        lines.append(
            f"| (c) pandas, both: **extrapolated** x{scale:.1f} (linear in events), not run | "
            f"full | ~{predicted_s:,.0f} | | ~{predicted_mb:,.0f} |"
        )
    lines += [
        "",
        "Where (a)'s time goes: the same scoring run again through `Engine.score`, timing each "
        f"step it reports ({runs['steps'].seconds:.1f} s wall, "
        f"{runs['steps'].peak_mb:,.0f} MB peak):",
        "",
        "| step | s |",
        "|---|---:|",
        *(f"| {step} | {seconds:.1f} |" for step, seconds in runs["steps"].report["steps"]),
    ]
    ratios = [
        (
            "subsample, measured: load + compute / Ibis work",
            pandas_s,
            ibis_sub.report["compute_s"],
            pandas_sub.peak_mb,
            ibis_sub.peak_mb,
        ),
        (
            "subsample, measured: `reference_features` alone / Ibis work",
            pandas_sub.report["compute_s"],
            ibis_sub.report["compute_s"],
            None,
            None,
        ),
    ]
    if "pandas" in runs:
        full = runs["pandas"].report
        ratios.append(
            (
                "full data, measured: load + compute / Ibis work",
                full["load_s"] + full["compute_s"],
                ibis_full.report["compute_s"],
                runs["pandas"].peak_mb,
                ibis_full.peak_mb,
            )
        )
    else:
        ratios.append(
            (
                "full data, pandas **extrapolated** / Ibis measured (process wall)",
                predicted_s,
                ibis_full.seconds,
                predicted_mb,
                ibis_full.peak_mb,
            )
        )
    lines += ["", "## pandas / Ibis", "", "| comparison | time | peak RSS |", "|---|---:|---:|"]
    for label, slow, fast, slow_mb, fast_mb in ratios:
        memory = f"{slow_mb / fast_mb:.1f}x" if slow_mb else ""
        lines.append(f"| {label} | {slow / fast:.1f}x | {memory} |")
    headline = ratios[2] if "pandas" in runs else ratios[0]
    speedup = headline[1] / headline[2]
    lines += [
        "",
        "## Goals",
        "",
        "| goal | reached | |",
        "|---|---:|---|",
        f"| `troth score` ≤ {goal_s:.0f} s wall | {runs['cli'].seconds:.1f} s | "
        f"{_yes(runs['cli'].seconds <= goal_s)} |",
        f"| Ibis ≥ {goal_ratio:.0f}x faster than pandas ({headline[0]}) | {speedup:.1f}x | "
        f"{_yes(speedup >= goal_ratio)} |",
        "",
        "## Agreement",
        "",
        f"Ibis and pandas feature tables on {agreement['sample']:,} random customers, "
        f"{agreement['checked']} columns (floats within 1e-9), pairs "
        + ", ".join(f"{a} vs {b}" for a, b in agreement["pairs"])
        + f": {'**agree**' if agreement['agree'] else '**disagree**'}.",
    ]
    if agreement["problems"]:
        lines.append("Differences: " + "; ".join(agreement["problems"]) + ".")
    if agreement["missing"]:
        lines.append(
            "Not in the pandas reference, so unchecked: " + ", ".join(agreement["missing"]) + "."
        )
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as out:
        out.write(("\n" if append else "") + text)
    return text


WORKERS = {
    "resolve": resolve_worker,
    "subsample": subsample_worker,
    "steps": steps_worker,
    "ibis": ibis_worker,
    "pandas": pandas_worker,
}

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the pandas reference lives in tests/
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        print(json.dumps(WORKERS[sys.argv[2]](*sys.argv[3:]), default=str), flush=True)
    else:
        main()
