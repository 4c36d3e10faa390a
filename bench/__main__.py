"""`make bench`: every figure recorded in bench/RESULTS.md, section by section.

- Cost: every path in AWS billing units beside a naive pipeline (`bench/billing.py`).
- Cold start of every function from the built layers, and the layers' sizes (`bench/coldstart.py`).
- Operations dispatch overhead per operation (`bench/dispatch.py`).
- CPU per entry of validating event-log entries and tracked events (here, no AWS).
- With `--local`: the local stack's loop (`bench/local_loop.py`; starts the stack).

Each section runs in its own interpreter (they start moto in different ways); `--only NAME`
runs one of them. Arguments after `--` go to that section.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "billing": "Cost per million items in AWS billing units",
    "coldstart": "Cold start from the built layers",
    "dispatch": "Operations dispatch overhead",
    "cpu": "Validation CPU",
    "local_loop": "The local loop",
}


def validation_cpu_per_entry() -> float:
    from batchops.services.event_log import validate_entry
    from tests.support import log_entry

    entries = [log_entry(f"c{i}", "SUCCESS", metadata={"row": i, "source": "bench"}) for i in range(10_000)]
    runs = []
    for _ in range(5):
        start = time.process_time()
        for entry in entries:
            validate_entry(entry)
        runs.append((time.process_time() - start) / len(entries))
    return statistics.median(runs)


def tracking_events_per_second() -> float:
    """Events per CPU-second of taking a 10,000-event bulk-track body from raw bytes to
    accepted, packable JSON (json.loads, pydantic per event, messageId, serialization)."""
    from batchops.services.tracking import check_events

    events = [
        {
            "event": "signup",
            "properties": {"plan": "basic", "accountType": "email", "freeTrial": True},
            "timestamp": "2025-10-29T22:00:00.778Z",
            **({"messageId": f"8b0f62f9-1e8e-4f15-8c2a-{i:012d}"} if i % 2 else {}),
        }
        for i in range(10_000)
    ]
    raw = json.dumps(events).encode()
    runs = []
    for _ in range(5):
        start = time.process_time()
        checked = check_events(json.loads(raw), "2026-11-23T00:00:00.000000Z")
        runs.append(time.process_time() - start)
        assert len(checked.accepted) == len(events)
    return len(events) / statistics.median(runs)


def cpu() -> None:
    per_entry = validation_cpu_per_entry()
    print(f"- event-log entries: {per_entry * 1e6:.1f} us CPU per entry ({1 / per_entry:,.0f} entries/s on one core)")
    rate = tracking_events_per_second()
    print(f"- tracked events (10,000 from raw bytes, median of 5): {rate:,.0f} events/s on one core")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", choices=sorted(SECTIONS))
    parser.add_argument("--local", action="store_true", help="also measure the local stack's loop")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="after --: arguments for the --only section")
    args = parser.parse_args()
    chosen = [args.only] if args.only else [s for s in SECTIONS if s != "local_loop" or args.local]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("layers/common", "local", "."))}
    for section in chosen:
        print(f"\n## {SECTIONS[section]}\n", flush=True)
        if section == "cpu":
            sys.path[:0] = [str(ROOT / "layers/common"), str(ROOT)]
            os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
            cpu()
            continue
        extra = [a for a in args.rest if a != "--"] if args.only else []
        subprocess.run([sys.executable, "-m", f"bench.{section}", *extra], check=True, cwd=ROOT, env=environment)


if __name__ == "__main__":
    main()
