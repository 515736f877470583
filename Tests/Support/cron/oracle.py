#!/usr/bin/env python3
"""croniter's fire times for random cron expressions, the oracle of Tests/ScheduleTests.

Given a seed, makes COUNT random valid five-field expressions (stars, numbers, lists, ranges,
steps, month and day names, day-of-week 7, macros), each with a time zone from a fixed list and
a start instant (half of them in the days before one of that zone's DST transitions), and prints
for each the next FIRES fire times croniter gives (Unix seconds), one JSON object a line:

    {"expr": "*/15 1-3 * * SUN", "tz": "Europe/Berlin", "start": 1743289200, "fires": [...]}

A fire croniter cannot find (no match within its 50 years) is null and ends the list. The first
line names the versions: {"croniter": "7.0.0", "python": "3.11.7"}.
"""
import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone

from croniter import croniter
from zoneinfo import ZoneInfo

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney",
         "America/Sao_Paulo", "Pacific/Auckland", "Australia/Lord_Howe"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
FIRST = datetime(2025, 1, 1, tzinfo=timezone.utc)
LAST = datetime(2029, 1, 1, tzinfo=timezone.utc)


def name_case(rng, name):
    return rng.choice([name, name.lower(), name.capitalize()])


def value(rng, low, high, names):
    v = rng.randint(low, high)
    if names and rng.random() < 0.4 and v - (0 if names is DAYS else 1) < len(names):
        return v, name_case(rng, names[v - (0 if names is DAYS else 1)])
    return v, str(v)


def item(rng, low, high, names, star_high):
    """One list entry: a number, a step */n, a range a-b (a < b) or a range with a step."""
    kind = rng.random()
    if kind < 0.08:
        return f"*/{rng.randint(1, star_high - low + 1)}"
    if kind < 0.5:
        return value(rng, low, high, names)[1]
    a, at = value(rng, low, high - 1, names)
    b, bt = value(rng, a + 1, high, names)
    if kind < 0.8:
        return f"{at}-{bt}"
    return f"{at}-{bt}/{rng.randint(1, max(1, (b - a)))}"


def field(rng, low, high, names=None, star=0.4, star_high=None):
    star_high = high if star_high is None else star_high
    r = rng.random()
    if r < star:
        return "*"
    if r < star + 0.15:
        return f"*/{rng.randint(1, star_high - low + 1)}"
    return ",".join(item(rng, low, high, names, star_high) for _ in range(rng.choice([1, 1, 1, 2, 3])))


def hour_field(rng):
    # Biased towards the small hours, where DST transitions happen.
    r = rng.random()
    if r < 0.3:
        return "*"
    if r < 0.55:
        return ",".join(str(h) for h in sorted(rng.sample(range(0, 5), rng.randint(1, 3))))
    if r < 0.65:
        a = rng.randint(0, 3)
        return f"{a}-{rng.randint(a + 1, 6)}"
    return field(rng, 0, 23, star=0.0)


def expression(rng):
    if rng.random() < 0.03:
        return name_case(rng, rng.choice(MACROS).upper()) if rng.random() < 0.3 else rng.choice(MACROS)
    minute = field(rng, 0, 59, star=0.15)
    hour = hour_field(rng)
    dom = field(rng, 1, 31, star=0.65)
    month = field(rng, 1, 12, MONTHS, star=0.7)
    dow = field(rng, 0, 7, DAYS, star=0.65, star_high=6)
    return f"{minute} {hour} {dom} {month} {dow}"


def transitions(zone):
    """The instants in [FIRST, LAST) where the zone's UTC offset changes, to the hour."""
    found = []
    day = FIRST
    while day < LAST:
        after = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            t = day
            while t.astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset():
                t += timedelta(hours=1)
            found.append(t)
        day = after
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--fires", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    zones = {name: ZoneInfo(name) for name in ZONES}
    changes = {name: transitions(zone) for name, zone in zones.items()}
    out = sys.stdout
    import croniter as module
    from importlib.metadata import version
    out.write(json.dumps({"croniter": version("croniter"), "python": sys.version.split()[0]}) + "\n")
    span = int((LAST - FIRST).total_seconds())
    for _ in range(args.count):
        expr = expression(rng)
        tz = rng.choice(ZONES)
        if changes[tz] and rng.random() < 0.5:
            start = int(rng.choice(changes[tz]).timestamp()) - rng.randint(0, 3 * 86400)
        else:
            start = int(FIRST.timestamp()) + rng.randint(0, span)
        if rng.random() < 0.5:
            start -= start % 60
        it = croniter(expr, datetime.fromtimestamp(start, zones[tz]))
        fires = []
        for _ in range(args.fires):
            try:
                fires.append(int(it.get_next(float)))
            except module.CroniterBadDateError:
                fires.append(None)
                break
        out.write(json.dumps({"expr": expr, "tz": tz, "start": start, "fires": fires}) + "\n")


if __name__ == "__main__":
    main()
