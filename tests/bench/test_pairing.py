"""The bench's ratio over the floor is paired: tether and its floor run back to back in every
repetition, and the ratio is the median of the per-repetition ratios, so a host that slows
down between repetitions does not move it."""

from __future__ import annotations

from typing import Any

from bench.report import summarise
from bench.run import _order
from bench.systems import SYSTEMS


def test_each_floor_runs_next_to_its_tether_system_taking_turns_to_go_first() -> None:
    runnable = [SYSTEMS[n] for n in ("floor-sqlite", "floor-postgres", "tether-sqlite",
                                     "tether-postgres", "dbos-sqlite")]  # fmt: skip
    for rep in range(4):
        names = [s.name for s in _order(runnable, rep)]
        assert sorted(names) == sorted(s.name for s in runnable)
        for backend in ("sqlite", "postgres"):
            t, f = names.index(f"tether-{backend}"), names.index(f"floor-{backend}")
            assert abs(t - f) == 1
            assert (t < f) == (rep % 2 == 0)
    firsts = {_order(runnable, rep)[0].name for rep in range(3)}
    assert len(firsts) == 3  # the rotation still moves who goes first


def _entry(family: str, values: list[float]) -> dict[str, Any]:
    return {
        "family": family,
        "compare_with": "" if family == "tether" else "tether-sqlite",
        "samples": [{"rep": i, "value": v, "secondary": {}} for i, v in enumerate(values)],
        "failures": [],
    }


def test_the_ratio_is_the_median_of_the_per_repetition_ratios() -> None:
    # The host doubles its cost each repetition; tether costs 1.1x its floor in two of them
    # and 1.3x in the middle one, whose samples are also both medians.
    floor = _entry("floor", [100.0, 200.0, 400.0])
    tether = _entry("tether", [110.0, 260.0, 440.0])
    e = summarise({"seq": {"systems": {"tether-sqlite": tether, "floor-sqlite": floor}}})
    ratio = e["seq"]["systems"]["floor-sqlite"]
    assert round(ratio["ratio"], 6) == 1.1
    assert ratio["ratio_pairs"] == 3
    assert round(ratio["ratio_of_medians"], 6) == 1.3


def test_only_repetitions_where_both_systems_passed_their_check_are_paired() -> None:
    tether = _entry("tether", [120.0, 999.0, 240.0])
    del tether["samples"][1]  # rejected in repetition 1
    floor = _entry("floor", [100.0, 150.0, 200.0])
    e = summarise({"seq": {"systems": {"tether-sqlite": tether, "floor-sqlite": floor}}})
    assert e["seq"]["systems"]["floor-sqlite"]["ratio_pairs"] == 2
    assert round(e["seq"]["systems"]["floor-sqlite"]["ratio"], 6) == 1.2


def test_a_tether_variant_runs_next_to_its_system_and_its_ratio_is_what_it_adds() -> None:
    runnable = [SYSTEMS[n] for n in ("tether-sqlite", "tether-sqlite-phoenix", "dbos-sqlite")]
    for rep in range(4):
        names = [s.name for s in _order(runnable, rep)]
        assert abs(names.index("tether-sqlite") - names.index("tether-sqlite-phoenix")) == 1
    # jsonl costs 100 then 200 (the host slows down); phoenix 110 then 230 beside it
    base = _entry("tether", [100.0, 200.0])
    base["compare_with"] = "tether-sqlite"  # as the harness records a tether system
    variant = _entry("tether", [110.0, 230.0])
    variant["compare_with"] = "tether-sqlite"
    e = summarise({"seq": {"systems": {"tether-sqlite": base, "tether-sqlite-phoenix": variant}}})
    row = e["seq"]["systems"]["tether-sqlite-phoenix"]
    assert round(row["variant_ratio"], 6) == 1.125  # the median of 1.1 and 1.15
    assert "variant_ratio" not in e["seq"]["systems"]["tether-sqlite"]
