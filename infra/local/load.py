"""`make load`: many users submitting at once on the local stack, then every accepted render followed to its end.

Each of `LOAD_USERS` users (default 100) fires `LOAD_RENDERS + 1` tiny renders (default 2 + 1) at the
same moment, under a rate policy of `LOAD_RENDERS` per hour: exactly `LOAD_RENDERS` per user must be
accepted and the rest refused with 429 (the limit is exact under concurrency), every accepted render
must complete (none lost, none failed), and it reports p50/p99 submit latency and the throughput.
Results go to `bench/results/load.json`. Exits 1 when any check fails.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
TINY: dict[str, Any] = {
    "timeline": {"scenes": [{"type": "title", "text": "Load", "duration": 1}]},
    "output": {"resolution": "720p", "fps": 30},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else float("nan")


def main() -> int:
    users = int(os.environ.get("LOAD_USERS", "100"))
    per_user = int(os.environ.get("LOAD_RENDERS", "2"))
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["RATE_LIMITS"] = json.dumps([{"limit": per_user, "seconds": 3600}])
    os.environ.setdefault("INITIAL_CREDITS", "100")
    from infra.local.stack import local_stack  # after the environment above: the stack reads it

    with local_stack() as (_cloud, gateway):
        url = gateway.url
        barrier = threading.Barrier(users)
        submits: list[tuple[str, int, float, str | None]] = []  # user, status, seconds, render id
        lock = threading.Lock()

        def user(n: int) -> None:
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer local:load-{n}"
            barrier.wait()
            for _ in range(per_user + 1):
                t0 = time.time()
                r = http.post(f"{url}/renders", json=TINY, timeout=120)
                elapsed = time.time() - t0
                with lock:
                    submits.append((f"load-{n}", r.status_code, elapsed, r.json().get("renderId")))

        t_start = time.time()
        with ThreadPoolExecutor(max_workers=users) as pool:
            list(pool.map(user, range(users)))
        submitted_in = time.time() - t_start
        accepted = [(u, rid) for u, status, _, rid in submits if status == 202 and rid]
        statuses = Counter(status for _, status, _, _ in submits)
        per_user_accepted = Counter(u for u, _ in accepted)

        pending = {rid: u for u, rid in accepted}
        ended: dict[str, str] = {}
        deadline = time.time() + max(600, 10 * len(accepted))
        while pending and time.time() < deadline:
            for rid, u in list(pending.items()):
                got = requests.get(
                    f"{url}/renders/{rid}", headers={"Authorization": f"Bearer local:{u}"}, timeout=30
                ).json()
                if got["status"] in ("complete", "failed", "cancelled"):
                    ended[rid] = got["status"]
                    del pending[rid]
            time.sleep(0.5)
        total = time.time() - t_start

    latencies = [s for _, _, s, _ in submits]
    completed = sum(1 for s in ended.values() if s == "complete")
    checks = {
        f"every user had exactly {per_user} accepted": all(
            per_user_accepted[f"load-{n}"] == per_user for n in range(users)
        ),
        "every other submit refused with 429": statuses.get(429, 0) == users and set(statuses) <= {202, 429},
        "every accepted render completed": completed == len(accepted),
        "none lost (every accepted render reached an end)": not pending,
    }
    report: dict[str, Any] = {
        "users": users,
        "renders_per_user_allowed": per_user,
        "submits": len(submits),
        "statuses": dict(statuses),
        "accepted": len(accepted),
        "completed": completed,
        "ended": dict(Counter(ended.values())),
        "lost": len(pending),
        "submit_p50_seconds": statistics.median(latencies) if latencies else None,
        "submit_p99_seconds": percentile(latencies, 0.99),
        "submitted_in_seconds": submitted_in,
        "total_seconds": total,
        "renders_per_minute": 60 * completed / total if total else None,
        "checks": checks,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(f"FAILED: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
