"""Compare assigned stages with the generator's latent truth on a `troth demo` folder.

Usage: python bench/stage_truth.py DEMO_DIR   (DEMO_DIR holds troth.duckdb and events.parquet,
scored by `troth demo`). Prints markdown confusion tables: typology and final journey level
against the assigned stage, the exact and within-one-stage agreement with the final level, and
cognitive loyalty per typology.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

STATES = [
    "none",
    "connection",
    "interaction",
    "satisfaction",
    "retention",
    "commitment",
    "advocacy",
    "engagement",
]


def main(folder: Path) -> None:
    """Print the comparison tables for the demo in `folder`."""
    con = duckdb.connect(str(folder / "troth.duckdb"), read_only=True)
    truth = str(folder / "events.truth.parquet")
    con.execute(
        "CREATE TEMP VIEW joined AS SELECT t.typology, t.final_level, "
        "coalesce(s.stage, 'none') AS stage, s.cognitive_loyalty "
        f"FROM read_parquet('{truth}') t "
        "JOIN identifiers i ON i.kind = 'user_id' AND i.value = t.userId "
        "JOIN customer_stage s ON s.customer_id = i.customer_id "
        "WHERE t.duplicate_of IS NULL"
    )
    for row in ("typology", "final_level"):
        counts = con.execute(f"SELECT {row}, stage, count(*) FROM joined GROUP BY ALL").fetchall()
        cells = {(r, s): n for r, s, n in counts}
        keys = sorted(
            {r for r, _, _ in counts},
            key=lambda k: (k not in STATES, STATES.index(k) if k in STATES else 0, k),
        )
        print(f"| {row} \\ assigned | " + " | ".join(STATES) + " | n |")
        print("|---" * (len(STATES) + 2) + "|")
        for key in keys:
            line = [cells.get((key, s), 0) for s in STATES]
            print(f"| {key} | " + " | ".join(map(str, line)) + f" | {sum(line)} |")
        print()
    rank = f"list_position({STATES}, stage) - list_position({STATES}, final_level)"
    exact, near = con.execute(
        f"SELECT avg((stage = final_level)::int), avg((abs({rank}) <= 1)::int) FROM joined"
    ).fetchone()
    print(f"exact match with the final level {exact:.1%}, within one stage {near:.1%}")
    loyal = con.execute(
        "SELECT typology, count(*) FILTER (WHERE cognitive_loyalty), count(*) FROM joined "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    print("cognitive loyalty: " + ", ".join(f"{t} {n}/{m}" for t, n, m in loyal))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
