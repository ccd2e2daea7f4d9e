"""Customer-value benchmark: troth.value's BTYD models and rfm_summary against lifetimes.

Run as `python bench/bench_value.py` (defaults: 10k, 100k and 1M customers; a 10M-row log).

1. Populations are drawn from each model's generative process with CDNOW-like parameters in
   weeks: BG/NBD r=0.24, alpha=4.41, a=0.79, b=2.43; Pareto/NBD r=0.55, alpha=10.58, s=0.61,
   beta=11.67; Gamma-Gamma p=6.25, q=3.74, v=15.44 on repeat buyers of the BG/NBD process (N
   customers means N repeat buyers: those are what a Gamma-Gamma fit sees). Customers join
   uniformly over 78 weeks; T and recency fall on a day grid (whole days / 7), so
   histories repeat as they do in real summaries.
2. For each model and size, in separate fresh processes (so each peak RSS is its own): troth
   fits and predicts; lifetimes does the same on the per-customer arrays, as users call it;
   and, for the two purchase models, lifetimes fits rows compressed with pandas (`weights`,
   the compression timed as part of the fit) and predicts on the unique rows, mapped back.
   Predictions are for every customer: P(alive) and expected purchases in the next 52 weeks,
   or expected_average_value for Gamma-Gamma.
3. rfm_summary (daily periods) on a 10M-row transaction log against
   `lifetimes.utils.summary_data_from_transaction_data` on the same pandas DataFrame; the two
   summaries are compared on every customer.
4. Agreement: the largest relative difference of parameters and of predictions between troth
   and lifetimes' own fits, and of predictions when troth uses lifetimes' parameters (the
   formulas alone). The table goes to bench/results/value.md. Workers print one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "value.md"
CACHE = Path(os.environ.get("TROTH_BENCH_CACHE", "/tmp/troth-bench"))
GOAL_RATIO = 20.0
HORIZON_WEEKS = 52.0
DAYS = 546  # 78 weeks of acquisition and observation
PARAMS = {
    "bgnbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43},
    "pareto": {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},
    "gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
}
MODEL_TITLES = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "gamma": "Gamma-Gamma"}
LIFETIMES_TIMEOUT = 1200.0


@dataclass
class Run:
    """One measured process: wall seconds, peak RSS in MB, and the JSON it printed."""

    seconds: float
    peak_mb: float
    report: dict
    killed: str = ""


def _ram_mb(field: str) -> float:
    """Return a /proc/meminfo field (MemTotal, MemAvailable) in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/meminfo")


def _rss_mb(status_file: Path) -> float:
    """Return a live process's resident set in MB (0 once it has exited)."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def measure(label: str, args: list[str], timeout: float = 3600.0) -> Run:
    """Run a worker in a fresh process; return its wall seconds, peak RSS and JSON report.

    A worker killed past `timeout` or past 80% of the free RAM returns a Run with `killed` set.
    """
    limit_mb = 0.8 * _ram_mb("MemAvailable")
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        status_file = Path(f"/proc/{proc.pid}/status")
        killed = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _rss_mb(status_file)
            elapsed = time.perf_counter() - started
            if not killed and (rss > limit_mb or elapsed > timeout):
                killed = f"killed at {rss:,.0f} MB RSS after {elapsed:.0f} s"
                proc.kill()
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0 and not killed:
        raise RuntimeError(f"{label}: {' '.join(cmd)} failed\n{stdout}\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    run = Run(seconds, usage.ru_maxrss / 1024, json.loads(lines[-1]) if lines else {}, killed)
    work = run.report.get("fit_s", 0.0) + run.report.get("predict_s", 0.0)
    print(f"{label:55s} {seconds:7.1f} s wall {work:7.2f} s work {run.peak_mb:7,.0f} MB {killed}")
    return run


# ---------------------------------------------------------------------------------- workers


def _rss_now_mb() -> float:
    """Return this process's resident set now, in MB."""
    return _rss_mb(Path("/proc/self/status"))


def generate_worker(n: str, seed: str, folder: str) -> dict:
    """Write the three populations of `n` customers as .npy files; return row counts."""
    import numpy as np

    from troth.value.models.bgnbd import simulate

    size, out = int(n), Path(folder)
    rng = np.random.default_rng(int(seed))

    def day_grid_ages(count: int) -> np.ndarray:
        return rng.integers(1, DAYS + 1, count) / 7.0

    x, t_x, T = simulate(day_grid_ages(size), **PARAMS["bgnbd"], rng=rng)
    t_x = np.floor(t_x * 7.0) / 7.0
    np.save(out / "bgnbd.npy", np.stack([x, t_x, T]))

    r, alpha, s, beta = PARAMS["pareto"].values()
    T = day_grid_ages(size)
    rate, dropout = rng.gamma(r, 1 / alpha, size), rng.gamma(s, 1 / beta, size)
    active = np.minimum(rng.exponential(1 / dropout), T)
    x = rng.poisson(rate * active).astype(np.float64)
    # Given x Poisson purchases in (0, active], the last one is at active * U^(1/x).
    last = active * rng.uniform(size=size) ** (1 / np.maximum(x, 1))
    t_x = np.where(x > 0, np.floor(last * 7.0) / 7.0, 0.0)
    np.save(out / "pareto.npy", np.stack([x, t_x, T]))

    p, q, v = PARAMS["gamma"].values()
    repeaters = np.empty(0)
    while repeaters.size < size:
        drawn, _, _ = simulate(day_grid_ages(size), **PARAMS["bgnbd"], rng=rng)
        repeaters = np.concatenate([repeaters, drawn[drawn > 0]])
    x = repeaters[:size]
    nu = rng.gamma(q, 1 / v, size)
    # The x repeat purchases sum to Gamma(p x, nu); spend is recorded in cents.
    total_cents = np.maximum(np.round(rng.gamma(p * x, 1 / nu) * 100), 1)
    np.save(out / "gamma.npy", np.stack([x, total_cents / 100 / x]))
    return {"customers": size, "max_frequency": float(x.max())}


def _timed(action):
    """Return (result of action(), seconds it took)."""
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def troth_worker(model: str, folder: str) -> dict:
    """Fit and predict with troth.value; save params and predictions; return the timings."""
    import numpy as np

    from troth.value.models.bgnbd import BGNBD
    from troth.value.models.gamma_gamma import GammaGamma
    from troth.value.models.pareto_nbd import ParetoNBD

    data = np.load(Path(folder) / f"{model}.npy")
    loaded_mb = _rss_now_mb()
    if model == "gamma":
        x, m = data
        fitted, fit_s = _timed(lambda: GammaGamma().fit(x, m))
        predictions, predict_s = _timed(lambda: [fitted.expected_average_value(x, m)])
        rows = int(np.count_nonzero(x))
    else:
        x, t_x, T = data
        cls = BGNBD if model == "bgnbd" else ParetoNBD
        fitted, fit_s = _timed(lambda: cls().fit(x, t_x, T))
        predictions, predict_s = _timed(
            lambda: [
                fitted.probability_alive(x, t_x, T),
                fitted.expected_purchases(HORIZON_WEEKS, x, t_x, T),
            ]
        )
        rows = None  # counted by the orchestrator, outside the measured process
    np.save(Path(folder) / f"{model}-troth.npy", np.stack(predictions))
    return {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "loaded_mb": loaded_mb,
        "params": dict(fitted.params),
        "rows": rows,
    }


def lifetimes_worker(model: str, folder: str, variant: str) -> dict:
    """Fit and predict with lifetimes (per customer, or on weighted unique rows)."""
    import warnings

    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    # lifetimes' autograd and pandas calls warn on current NumPy; not ours to fix.
    warnings.simplefilter("ignore")
    # ParetoNBDFitter draws its starting point from the global NumPy generator.
    np.random.seed(13)
    data = np.load(Path(folder) / f"{model}.npy")
    loaded_mb = _rss_now_mb()
    if model == "gamma":
        x, m = data
        fitted, fit_s = _timed(lambda: GammaGammaFitter().fit(x, m))
        predictions, predict_s = _timed(
            lambda: [np.asarray(fitted.conditional_expected_average_profit(x, m))]
        )
        rows = x.size
    else:
        cls = BetaGeoFitter if model == "bgnbd" else ParetoNBDFitter
        x, t_x, T = data

        def predict(frequency, recency, age) -> list:
            alive = fitted.conditional_probability_alive(frequency, recency, age)
            expected = fitted.conditional_expected_number_of_purchases_up_to_time(
                HORIZON_WEEKS, frequency, recency, age
            )
            return [np.asarray(alive), np.asarray(expected)]

        if variant == "customers":
            fitted, fit_s = _timed(lambda: cls().fit(x, t_x, T))
            predictions, predict_s = _timed(lambda: predict(x, t_x, T))
            rows = x.size
        else:

            def compress_and_fit():
                frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T})
                groups = frame.groupby(["frequency", "recency", "T"], sort=False)
                unique = groups.size().rename("weights").reset_index()
                inverse = groups.ngroup().to_numpy()
                model_ = cls().fit(
                    unique["frequency"], unique["recency"], unique["T"], weights=unique["weights"]
                )
                return model_, unique, inverse

            (fitted, unique, inverse), fit_s = _timed(compress_and_fit)
            predictions, predict_s = _timed(
                lambda: [
                    column[inverse]
                    for column in predict(unique["frequency"], unique["recency"], unique["T"])
                ]
            )
            rows = len(unique)
    np.save(Path(folder) / f"{model}-lifetimes-{variant}.npy", np.stack(predictions))
    return {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "loaded_mb": loaded_mb,
        "params": {k: float(v) for k, v in fitted.params_.items()},
        "rows": int(rows),
    }


def log_worker(rows: str, customers: str, seed: str, path: str) -> dict:
    """Write a transaction log (customer, time, value) of `rows` rows as Parquet."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(int(seed))
    n = int(rows)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    seconds = rng.integers(0, DAYS * 86_400, n).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "customer": rng.integers(0, int(customers), n),
            "time": start + seconds.astype("timedelta64[us]"),
            "value": np.round(rng.gamma(2.0, 20.0, n), 2) + 0.01,
        }
    )
    frame.to_parquet(path)
    return {"rows": n, "customers": int(frame["customer"].nunique())}


def summary_worker(which: str, path: str, out: str) -> dict:
    """Summarise the log with troth or lifetimes (daily periods); save it; return the timing."""
    import warnings

    import pandas as pd

    log = pd.read_parquet(path)
    loaded_mb = _rss_now_mb()
    if which == "troth":
        from troth.value.summary import rfm_summary

        summary, seconds = _timed(lambda: rfm_summary(log, "customer", "time", "value", freq="D"))
    else:
        from lifetimes.utils import summary_data_from_transaction_data

        warnings.simplefilter("ignore")
        summary, seconds = _timed(
            lambda: summary_data_from_transaction_data(log, "customer", "time", "value", freq="D")
        )
    summary[["frequency", "recency", "T", "monetary_value"]].to_parquet(out)
    return {"fit_s": seconds, "loaded_mb": loaded_mb, "customers": len(summary)}


WORKERS = {
    "generate": generate_worker,
    "troth": troth_worker,
    "lifetimes": lifetimes_worker,
    "log": log_worker,
    "summary": summary_worker,
}


# ------------------------------------------------------------------------------ agreement


def _relative(ours, theirs) -> float:
    """Return max |ours - theirs| / |theirs| over the arrays (0 where both are 0)."""
    import numpy as np

    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = np.maximum(np.abs(theirs), np.abs(ours))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, np.abs(ours - theirs) / scale, 0.0)
    return float(np.max(relative))


def agreement(model: str, folder: Path, troth: Run, theirs: Run, variant: str) -> dict:
    """Return the largest relative differences of params and predictions (troth vs lifetimes)."""
    import numpy as np

    from troth.value.models.bgnbd import BGNBD
    from troth.value.models.gamma_gamma import GammaGamma
    from troth.value.models.pareto_nbd import ParetoNBD

    names = list(PARAMS[model])
    ours_p, their_p = troth.report["params"], theirs.report["params"]
    params = max(abs(ours_p[k] / their_p[k] - 1) for k in names)
    ours = np.load(folder / f"{model}-troth.npy")
    other = np.load(folder / f"{model}-lifetimes-{variant}.npy")
    data = np.load(folder / f"{model}.npy")
    # The formulas alone: troth's predictions at lifetimes' parameters.
    if model == "gamma":
        at_theirs = GammaGamma()
        at_theirs.params = dict(their_p)
        same = [at_theirs.expected_average_value(*data)]
    else:
        if model == "bgnbd":
            fixed = BGNBD().set_params(**their_p)
        else:
            fixed = ParetoNBD.from_params(**their_p)
        same = [
            fixed.probability_alive(*data),
            fixed.expected_purchases(HORIZON_WEEKS, *data),
        ]
    result = {
        "params": params,
        "predictions": max(_relative(a, b) for a, b in zip(ours, other, strict=True)),
        "same_params": max(_relative(a, b) for a, b in zip(same, other, strict=True)),
    }
    if model == "pareto":
        # lifetimes stops Nelder-Mead at tol 1e-4: which optimum is higher, per customer?
        mine = ParetoNBD.from_params(**ours_p).individual_log_likelihood(*data).mean()
        result["loglik_gain"] = float(mine - fixed.individual_log_likelihood(*data).mean())
    return result


def unique_rows(folder: Path, model: str) -> int:
    """Return the number of distinct (frequency, recency, T) rows of a population."""
    import numpy as np

    return len(np.unique(np.load(folder / f"{model}.npy").T, axis=0))


def summary_agreement(folder: Path) -> dict:
    """Return the largest differences between troth's and lifetimes' RFM summaries."""
    import numpy as np
    import pandas as pd

    ours = pd.read_parquet(folder / "summary-troth.parquet").sort_index()
    theirs = pd.read_parquet(folder / "summary-lifetimes.parquet").sort_index()
    same_customers = bool(np.array_equal(ours.index.to_numpy(), theirs.index.to_numpy()))
    differences = {
        column: float(np.max(np.abs(ours[column].to_numpy() - theirs[column].to_numpy())))
        for column in ("frequency", "recency", "T")
    }
    differences["monetary_value"] = _relative(ours["monetary_value"], theirs["monetary_value"])
    return {"same_customers": same_customers, "customers": len(ours), **differences}


# ------------------------------------------------------------------------------ the run


def run_models(sizes: list[int], seed: int, folder: Path, pareto_limit: int) -> list[dict]:
    """Generate, fit and predict every model at every size; return one record per run."""
    records = []
    for size in sizes:
        where = folder / f"n{size}"
        where.mkdir()
        measure(
            f"generate {size:,} customers per model", ["generate", str(size), str(seed), str(where)]
        )
        for model in PARAMS:
            title = f"{MODEL_TITLES[model]} {size:,}"
            troth = measure(f"{title}: troth", ["troth", model, str(where)])
            if troth.report["rows"] is None:
                troth.report["rows"] = unique_rows(where, model)
            variants = ["customers"] if model == "gamma" else ["customers", "weights"]
            for variant in variants:
                record = {"model": model, "size": size, "variant": variant, "troth": troth}
                if model == "pareto" and variant == "customers" and size > pareto_limit:
                    record["lifetimes"] = None  # extrapolated in the report
                    records.append(record)
                    continue
                theirs = measure(
                    f"{title}: lifetimes ({variant})",
                    ["lifetimes", model, str(where), variant],
                    timeout=LIFETIMES_TIMEOUT,
                )
                record["lifetimes"] = theirs
                if not theirs.killed:
                    record["agreement"] = agreement(model, where, troth, theirs, variant)
                records.append(record)
    return records


def run_summary(rows: int, customers: int, seed: int, folder: Path) -> dict:
    """Time rfm_summary and lifetimes' summary on one generated log; return runs and agreement."""
    log = folder / "log.parquet"
    generated = measure(
        f"generate a {rows:,}-row log", ["log", str(rows), str(customers), str(seed), str(log)]
    )
    runs = {
        which: measure(
            f"summary of {rows:,} rows: {which}",
            ["summary", which, str(log), str(folder / f"summary-{which}.parquet")],
            timeout=LIFETIMES_TIMEOUT,
        )
        for which in ("troth", "lifetimes")
    }
    return {
        "rows": rows,
        "log": generated.report,
        "runs": runs,
        "agreement": summary_agreement(folder),
    }


# ------------------------------------------------------------------------------- the report


def _seconds(value: float) -> str:
    """Return seconds with two significant decimals below 10 s."""
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _ratio(theirs: float, ours: float) -> str:
    """Return theirs / ours as a speed-up factor."""
    return f"{theirs / ours:.0f}x" if theirs / ours >= 10 else f"{theirs / ours:.1f}x"


def _total(run: Run) -> float:
    """Return a run's fit plus predict seconds (the timed work, not interpreter start-up)."""
    return run.report["fit_s"] + run.report["predict_s"]


def _extrapolated(records: list[dict], record: dict) -> tuple[float, float, int] | None:
    """Return (fit s, predict s, from size) scaled linearly from the largest measured size."""
    measured = [
        r
        for r in records
        if r["model"] == record["model"]
        and r["variant"] == record["variant"]
        and r.get("lifetimes")
        and not r["lifetimes"].killed
    ]
    if not measured:
        return None
    base = max(measured, key=lambda r: r["size"])
    scale = record["size"] / base["size"]
    report = base["lifetimes"].report
    return report["fit_s"] * scale, report["predict_s"] * scale, base["size"]


def _model_rows(records: list[dict], record: dict, first: bool) -> list[str]:
    """Return the table rows of one (model, size, lifetimes variant) record."""
    size, troth, theirs = record["size"], record["troth"], record["lifetimes"]
    lines = []
    if first:
        t = troth.report
        lines.append(
            f"| {size:,} | troth | {t['rows']:,} | {_seconds(t['fit_s'])} | "
            f"{_seconds(t['predict_s'])} | {_seconds(_total(troth))} | | "
            f"{troth.peak_mb:,.0f} | {t['loaded_mb']:,.0f} | | | |"
        )
    label = (
        "lifetimes, per customer"
        if record["variant"] == "customers"
        else ("lifetimes, unique rows + weights")
    )
    if theirs is None or theirs.killed:
        guess = _extrapolated(records, record)
        why = theirs.killed if theirs is not None else "not run"
        if guess is None:
            lines.append(f"| {size:,} | {label} | | {why} | | | | | | | | |")
            return lines
        fit_s, predict_s, base = guess
        lines.append(
            f"| {size:,} | {label} ({why}; **extrapolated** x{size // base} from {base:,}) | | "
            f"~{_seconds(fit_s)} | ~{_seconds(predict_s)} | ~{_seconds(fit_s + predict_s)} | "
            f"~{_ratio(fit_s, troth.report['fit_s'])} / "
            f"~{_ratio(fit_s + predict_s, _total(troth))} | | | | | |"
        )
        return lines
    r, a = theirs.report, record["agreement"]
    lines.append(
        f"| {size:,} | {label} | {r['rows']:,} | {_seconds(r['fit_s'])} | "
        f"{_seconds(r['predict_s'])} | {_seconds(_total(theirs))} | "
        f"{_ratio(r['fit_s'], troth.report['fit_s'])} / {_ratio(_total(theirs), _total(troth))} | "
        f"{theirs.peak_mb:,.0f} | {r['loaded_mb']:,.0f} | {a['params']:.1e} | "
        f"{a['predictions']:.1e} | {a['same_params']:.1e} |"
    )
    if "loglik_gain" in a:
        lines[-1] = lines[-1].replace(
            f"| {a['params']:.1e} |",
            f"| {a['params']:.1e} (troth's log-likelihood {a['loglik_gain']:+.1e} per customer) |",
        )
    return lines


def _headline(records: list[dict]) -> list[str]:
    """Return the goal table: each model at the largest size against lifetimes per customer."""
    largest = max(r["size"] for r in records)
    lines = [
        f"## Goal: ≥ {GOAL_RATIO:.0f}x faster than lifetimes at {largest:,} customers, "
        "with lower peak memory",
        "",
        "Against lifetimes on the per-customer arrays (how users call it). Seconds are fit plus "
        "predict for every customer.",
        "",
        "| model | troth s | lifetimes s | speed-up (fit / fit+predict) | goal | "
        "troth peak MB | lifetimes peak MB | lower memory |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for record in records:
        if record["size"] != largest or record["variant"] != "customers":
            continue
        troth, theirs = record["troth"], record["lifetimes"]
        title = MODEL_TITLES[record["model"]]
        if theirs is None or theirs.killed:
            guess = _extrapolated(records, record)
            if guess is None:
                lines.append(f"| {title} | {_seconds(_total(troth))} | n/a | | | | | |")
                continue
            fit_s, predict_s, _ = guess
            speed = (fit_s + predict_s) / _total(troth)
            lines.append(
                f"| {title} | {_seconds(_total(troth))} | ~{_seconds(fit_s + predict_s)} "
                f"(extrapolated) | ~{_ratio(fit_s, troth.report['fit_s'])} / "
                f"~{_ratio(fit_s + predict_s, _total(troth))} | "
                f"{'met' if speed >= GOAL_RATIO else '**not met**'} | "
                f"{troth.peak_mb:,.0f} | n/a | |"
            )
            continue
        fit_ratio = theirs.report["fit_s"] / troth.report["fit_s"]
        total_ratio = _total(theirs) / _total(troth)
        met = min(fit_ratio, total_ratio) >= GOAL_RATIO
        lines.append(
            f"| {title} | {_seconds(_total(troth))} | {_seconds(_total(theirs))} | "
            f"{_ratio(theirs.report['fit_s'], troth.report['fit_s'])} / "
            f"{_ratio(_total(theirs), _total(troth))} | {'met' if met else '**not met**'} | "
            f"{troth.peak_mb:,.0f} | {theirs.peak_mb:,.0f} | "
            f"{'yes' if troth.peak_mb < theirs.peak_mb else '**no**'} |"
        )
    return [*lines, ""]


def _summary_section(summary: dict) -> list[str]:
    """Return the rfm_summary section of the report."""
    runs, agree = summary["runs"], summary["agreement"]
    ours, theirs = runs["troth"], runs["lifetimes"]
    exact = agree["same_customers"] and max(agree[c] for c in ("frequency", "recency", "T")) == 0
    lines = [
        f"## `rfm_summary` on a {summary['rows']:,}-row transaction log",
        "",
        f"{summary['rows']:,} transactions of {summary['log']['customers']:,} customers "
        "(uniform over 78 weeks, values in cents), one pandas DataFrame read from Parquet in "
        'each process; daily periods (`freq="D"`).',
        "",
        "| run | seconds | peak RSS MB | RSS after loading the log MB |",
        "|---|---:|---:|---:|",
    ]
    for label, run in (
        ("troth `rfm_summary` (in-memory DuckDB)", ours),
        ("lifetimes `summary_data_from_transaction_data`", theirs),
    ):
        if run.killed:
            lines.append(f"| {label} | {run.killed} | | |")
            continue
        lines.append(
            f"| {label} | {_seconds(run.report['fit_s'])} | {run.peak_mb:,.0f} | "
            f"{run.report['loaded_mb']:,.0f} |"
        )
    if not theirs.killed:
        lines += [
            "",
            f"lifetimes ÷ troth: {_ratio(theirs.report['fit_s'], ours.report['fit_s'])}. "
            f"Agreement over all {agree['customers']:,} customers: "
            f"{'the same customers' if agree['same_customers'] else '**different customers**'}; "
            f"frequency, recency and T {'identical' if exact else 'differ'} (largest "
            f"differences {agree['frequency']:g}, {agree['recency']:g}, {agree['T']:g}); "
            f"monetary value within {agree['monetary_value']:.1e} relative.",
        ]
    return [*lines, ""]


def write_report(path: Path, info: dict, records: list[dict], summary: dict | None) -> str:
    """Write the run's figures to `path` as markdown; return the text."""
    import lifetimes
    import numpy as np
    import scipy

    lines = [
        "# Customer value: `troth.value` against lifetimes",
        "",
        f"Run {info['started_at']:%Y-%m-%d %H:%M} UTC on {platform.platform()}, "
        f"{os.cpu_count()} cores, {_ram_mb('MemTotal') / 1024:.0f} GB RAM; lifetimes "
        f"{lifetimes.__version__}, NumPy {np.__version__}, SciPy {scipy.__version__}; "
        f"{info['minutes']:.1f} minutes in all. Load average (1/5/15 min) "
        f"{'/'.join(f'{x:.1f}' for x in info['load_before'])} before, "
        f"{'/'.join(f'{x:.1f}' for x in info['load_after'])} after: other work on the machine "
        "makes the timings noisy. Reproduce with `make bench` (all benchmarks) or "
        "`.venv/bin/python bench/bench_value.py`.",
        "",
        *_headline(records),
        "## Per model and size",
        "",
        "Each row is one fresh process; fit and predict seconds are timed inside it (data "
        "loaded, imports done); peak RSS is the whole process's (wait4), and the RSS after "
        "loading the data shows what the interpreter, libraries and data take before any work. "
        "Predictions, for every customer: P(alive) and expected purchases in the next "
        f"{HORIZON_WEEKS:.0f} weeks (Gamma-Gamma: expected average transaction value). "
        "Speed-up is lifetimes ÷ troth, fit / fit+predict. Δ is the largest relative "
        "difference from troth: of the parameters, of the predictions from each one's own "
        "fit, and of the predictions when troth uses lifetimes' parameters (the formulas "
        "alone). lifetimes fits with its defaults: BFGS (tol 1e-7) for BG/NBD and "
        "Gamma-Gamma, Nelder-Mead (tol 1e-4) for Pareto/NBD, whose optimum is therefore "
        'looser. "Unique rows + weights" is lifetimes fitted on rows compressed with '
        "pandas (compression timed with the fit) and predicting on the unique rows.",
        "",
    ]
    header = [
        "| customers | run | rows fitted | fit s | predict s | fit+predict s | speed-up | "
        "peak RSS MB | RSS loaded MB | Δ params | Δ predictions | Δ same params |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    data_notes = {
        "bgnbd": "customers; T uniform on whole days up to 78 weeks, recency floored to days",
        "pareto": "customers; T uniform on whole days up to 78 weeks, recency floored to days",
        "gamma": "repeat buyers, their frequency from the BG/NBD process above; spend in cents",
    }
    for model in PARAMS:
        params = ", ".join(f"{k}={v}" for k, v in PARAMS[model].items())
        lines += [f"### {MODEL_TITLES[model]} ({params}; {data_notes[model]})", "", *header]
        seen = set()
        for record in (r for r in records if r["model"] == model):
            lines += _model_rows(records, record, record["size"] not in seen)
            seen.add(record["size"])
        lines.append("")
    if summary is not None:
        lines += _summary_section(summary)
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def disagreements(records: list[dict], summary: dict | None) -> list[str]:
    """Return what disagrees beyond the tolerances (empty when all agree)."""
    problems = []
    for record in records:
        a = record.get("agreement")
        if a is None:
            continue
        where = f"{MODEL_TITLES[record['model']]} {record['size']:,} ({record['variant']})"
        if a["same_params"] > 1e-6:
            problems.append(
                f"{where}: predictions at the same params differ by {a['same_params']:.1e}"
            )
        # Pareto/NBD: lifetimes' Nelder-Mead (tol 1e-4) stops short; its log-likelihood shows it.
        if record["model"] != "pareto" and a["params"] > 1e-3:
            problems.append(f"{where}: params differ by {a['params']:.1e}")
        if a.get("loglik_gain", 0.0) < -1e-9:
            problems.append(f"{where}: lifetimes found a higher likelihood")
    if summary is not None and not summary["runs"]["lifetimes"].killed:
        agree = summary["agreement"]
        worst = max(agree[c] for c in ("frequency", "recency", "T", "monetary_value"))
        if not agree["same_customers"] or worst > 1e-9:
            problems.append(f"rfm_summary differs from lifetimes by up to {worst:g}")
    return problems


def main() -> None:
    """Run every measurement and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="customers, comma-separated"
    )
    parser.add_argument("--log-rows", type=int, default=10_000_000)
    parser.add_argument("--log-customers", type=int, default=1_000_000)
    parser.add_argument(
        "--pareto-limit",
        type=int,
        default=1_000_000,
        help="largest size at which lifetimes' Pareto/NBD runs per customer (beyond: extrapolated)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    started_at, load_before = datetime.now(UTC), os.getloadavg()
    clock = time.perf_counter()
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="value-", dir=CACHE) as tmp:
        folder = Path(tmp)
        records = run_models(sizes, args.seed, folder, args.pareto_limit)
        summary = (
            run_summary(args.log_rows, args.log_customers, args.seed, folder)
            if args.log_rows
            else None
        )
    info = {
        "started_at": started_at,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "minutes": (time.perf_counter() - clock) / 60,
        "seed": args.seed,
    }
    text = write_report(args.results, info, records, summary)
    print(text)
    problems = disagreements(records, summary)
    if problems:
        raise SystemExit("troth and lifetimes disagree: " + "; ".join(problems))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        print(json.dumps(WORKERS[sys.argv[2]](*sys.argv[3:])))
    else:
        main()
