"""Cron schedules that start runs, fired by whichever worker sees a tick first.

A tick fires once however many workers run: the run it starts has the idempotency key
`schedule:NAME:TICK`, and `next_at` moves on by compare-and-set. Ticks missed while no worker
ran follow the schedule's stated `catchup` policy:

- `skip` (default): missed ticks are dropped; the latest due tick still fires if it came due
  less than `GRACE` seconds ago (a worker that was merely busy or restarting is not "missing").
- `once`: one run stands for all the missed ticks (the latest), then the schedule goes on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from croniter import CroniterBadCronError, croniter

from tether.errors import InvalidInput, TetherError
from tether.foundation.checkpoint.contract import Checkpointer, Schedule

log = logging.getLogger("tether.schedules")

GRACE = 60.0
CATCHUP = ("skip", "once")

Start = Callable[[str, str, str], str]  # (workflow, input JSON, key) -> run id


def next_tick(cron: str, after: float) -> float:
    return float(croniter(cron, after).get_next(float))


def new_schedule(
    name: str,
    cron: str,
    workflow: str,
    input_json: str = "{}",
    catchup: str = "skip",
    now: float | None = None,
) -> Schedule:
    """A schedule checked before it is stored: a bad cron line or policy is the caller's error
    now, not a silent worker log line later."""
    if not croniter.is_valid(cron):
        raise InvalidInput(f"schedule {name!r}", f"{cron!r} is not a cron expression")
    if catchup not in CATCHUP:
        raise InvalidInput(f"schedule {name!r}", f"catchup must be one of {', '.join(CATCHUP)}")
    try:
        json.loads(input_json)
    except ValueError as e:
        raise InvalidInput(f"schedule {name!r}", f"input is not valid JSON: {e}") from None
    now = time.time() if now is None else now
    return Schedule(
        name=name,
        cron=cron,
        workflow=workflow,
        input=input_json,
        catchup=catchup,
        next_at=next_tick(cron, now),
        created_at=now,
    )


def fire_due(cp: Checkpointer, start: Start, now: float | None = None) -> list[str]:
    """Start the runs of every due tick; returns their ids."""
    now = time.time() if now is None else now
    started: list[str] = []
    for s in cp.schedules():
        if s.next_at > now:
            continue
        try:
            last_due = _last_due(s, now)
        except CroniterBadCronError as e:  # stored by an older tether or by hand
            log.error("schedule %s has a bad cron line %r: %s", s.name, s.cron, e)
            continue
        fire = s.catchup == "once" or now - last_due <= GRACE
        if fire:
            try:
                started.append(start(s.workflow, s.input, f"schedule:{s.name}:{last_due:.0f}"))
            except TetherError as e:  # an unknown workflow or bad input: say so, keep ticking
                log.error("schedule %s could not start %s: %s", s.name, s.workflow, e)
        cp.advance_schedule(s.name, s.next_at, next_tick(s.cron, last_due))
    return started


def _last_due(s: Schedule, now: float) -> float:
    last, it = s.next_at, croniter(s.cron, s.next_at)
    while (tick := float(it.get_next(float))) <= now:
        last = tick
    return last
