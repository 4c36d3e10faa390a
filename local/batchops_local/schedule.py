"""EventBridge schedules as timer threads.

`rate(...)` expressions fire every interval (the first time one interval after start, as a new
EventBridge rule does). BATCHOPS_LOCAL_SCHEDULE_SCALE multiplies the intervals, so tests can run
a 5-minute sweeper every few hundred milliseconds. cron(...) is not emulated: it is reported at
start and skipped (invoke the function by hand, or use a rate locally).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from batchops_local.background import BackgroundLoop
from batchops_local.functions import FunctionRegistry, InvocationError
from batchops_local.template import ACCOUNT_ID, REGION, Function, ScheduleEvent

_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")


def parse_rate(expression: str) -> float:
    """Seconds between runs of `rate(N unit)`; ValueError when EventBridge would reject it
    (EventBridge wants the singular unit for 1 and the plural for more)."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise ValueError(f"not a rate expression: {expression!r}")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise ValueError(f"{expression!r}: the rate must be at least 1")
    singular = unit.rstrip("s")
    if (value == 1) != (unit == singular):
        raise ValueError(f"{expression!r}: use '{singular}' for 1 and '{singular}s' for more")
    return float(value * _UNIT_SECONDS[singular])


def scheduled_event(rule_name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class ScheduleTimer(BackgroundLoop):
    def __init__(
        self,
        fn: Function,
        event: ScheduleEvent,
        interval: float,
        registry: FunctionRegistry,
        log: Callable[[str], None],
    ) -> None:
        self.fn = fn
        self.event = event
        self.interval = interval
        self.registry = registry
        self.log = log
        self.rule_name = f"{fn.logical_id}{event.name}"
        super().__init__(f"schedule:{self.rule_name}")

    def _payload(self) -> Any:
        if self.event.input is not None:
            return json.loads(self.event.input)
        return scheduled_event(self.rule_name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.registry.invoke(self.fn.name, self._payload())
                self.log(f"schedule {self.rule_name} -> {self.fn.name}: ok")
            except InvocationError as exc:
                self.log(f"schedule {self.rule_name} -> {self.fn.name}: failed ({exc.error_type})")


# The batch sweeper runs every minute on AWS; locally every BATCHOPS_LOCAL_SWEEP_SECONDS, so a
# batch's timeout_minutes (fractions allowed) ends it promptly in development.
SWEEP_FUNCTIONS = ("BatchSweeperFunction",)


def start_schedules(
    functions: dict[str, Function],
    registry: FunctionRegistry,
    scale: float,
    log: Callable[[str], None],
    sweep_seconds: float | None = None,
) -> list[ScheduleTimer]:
    timers: list[ScheduleTimer] = []
    for fn in functions.values():
        for event in fn.schedule_events:
            if not event.enabled:
                continue
            if event.expression.strip().startswith("cron("):
                where = f"{fn.logical_id}.{event.name}"
                log(f"schedule {where}: {event.expression} is not emulated locally, skipped")
                continue
            interval = parse_rate(event.expression) * scale
            if sweep_seconds is not None and fn.logical_id in SWEEP_FUNCTIONS:
                interval = sweep_seconds
            timers.append(ScheduleTimer(fn, event, interval, registry, log))
    for timer in timers:
        timer.start()
    return timers
