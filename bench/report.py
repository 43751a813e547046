"""Summaries and the markdown table: median, min and max of each system's checked samples, and
tether over each peer (every metric is a cost, so a ratio below 1 is tether ahead).

The ratio is paired: each repetition's tether sample over the same repetition's peer sample,
then the median of those. The host's speed drifts between repetitions by more than the gaps
being measured; within one repetition both systems ran minutes apart at most (a floor runs
right next to its tether system), so the pair shares the drift and the ratio cancels it. The
ratio of the two medians is kept in the JSON as `ratio_of_medians`.
"""

from __future__ import annotations

import statistics
from typing import Any


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Add per-system statistics and tether/peer ratios to the raw per-workload results."""
    for w in results.values():
        systems = w["systems"]
        for e in systems.values():
            values = [s["value"] for s in e["samples"]]
            if values:
                e.update(_stats(values))
                keys = e["samples"][0]["secondary"].keys()
                e["secondary"] = {
                    k: statistics.median(s["secondary"][k] for s in e["samples"]) for k in keys
                }
        for name, e in systems.items():
            ref = systems.get(e["compare_with"] or "", {})
            if e["family"] == "tether" and e["compare_with"] != name and "median" in ref:
                if "median" in e:
                    _variant_ratio(e, ref)
                continue
            if e["family"] == "tether" or "median" not in e or "median" not in ref:
                continue
            ours = {s["rep"]: s["value"] for s in ref["samples"]}
            pairs = [ours[s["rep"]] / s["value"] for s in e["samples"] if s["rep"] in ours]
            of_medians = ref["median"] / e["median"] if e["median"] else 0.0
            if e["family"] == "tether-temporal":  # tether's row over the engine it runs on
                pairs = [1 / p for p in pairs if p]
                of_medians = 1 / of_medians if of_medians else 0.0
            if pairs and all(s["value"] for s in e["samples"]):
                e["ratio"] = statistics.median(pairs)
                e["ratio_pairs"] = len(pairs)
                e["ratio_of_medians"] = of_medians
                e["ratio_of"] = e["compare_with"]
    return results


def _variant_ratio(e: dict[str, Any], base: dict[str, Any]) -> None:
    """A tether variant (tether-sqlite-phoenix) over the tether system it varies, paired per
    repetition like the peers: what the variant's option costs (above 1: it costs more)."""
    theirs = {s["rep"]: s["value"] for s in base["samples"]}
    pairs = [s["value"] / theirs[s["rep"]] for s in e["samples"] if theirs.get(s["rep"])]
    if pairs:
        e["variant_ratio"] = statistics.median(pairs)
        e["ratio_pairs"] = len(pairs)
        e["ratio_of"] = e["compare_with"]


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _status(e: dict[str, Any]) -> str:
    if "skipped" in e:
        return f"not measured: {e['skipped']}"
    notes = []
    if e["failures"]:
        notes.append(f"{len(e['failures'])} rejected: {e['failures'][0]}")
    if not e["samples"]:
        notes.insert(0, "no valid sample")
    return "; ".join(notes)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"# tether benchmark, {doc['started'][:10]} on {m['host']}",
        "",
        f"- machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}, {m['platform']}; "
        f"PostgreSQL {m['postgres'] or 'unreachable'}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in doc['versions'].items())}",
        f"- {doc['reps']} repetitions{' (quick sizes)' if doc['quick'] else ''}, systems "
        f"interleaved, each measurement in a fresh process; total {doc['duration_s']:.0f} s",
        "- every number is a cost (lower is better); **tether/peer** is the median, over the "
        "repetitions, of tether's sample over the peer's in the same repetition, on the same "
        "backend (below 1: tether is ahead; the goal over the floor is ≤ 1.3). A floor runs right "
        "next to its tether system, so the pair shares the host's drift",
        "",
    ]
    if doc.get("configurations"):
        lines += ["## How each system was configured", ""]
        lines += [f"- **{name}**: {config}" for name, config in doc["configurations"].items()]
        lines.append("")
    for name, w in doc["workloads"].items():
        lines += [f"## {name}: {w['title']}", "", f"params `{w['params']}`", ""]
        systems = w["systems"]
        sec_keys: list[str] = []
        for e in systems.values():
            for k in e.get("secondary", {}):
                if k not in sec_keys:
                    sec_keys.append(k)
        head = ["system", f"median {w['metric']}", "min", "max", "tether/peer", *sec_keys, "note"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for sname, e in systems.items():
            if "median" in e:
                cells = [_num(e["median"]), _num(e["min"]), _num(e["max"])]
                ratio = f"{e['ratio']:.2f}× (vs {e['ratio_of']})" if "ratio" in e else ""
                if "variant_ratio" in e:
                    ratio = f"{e['variant_ratio']:.2f}× of {e['ratio_of']}"
                sec = [_num(e["secondary"][k]) if k in e["secondary"] else "" for k in sec_keys]
            else:
                cells, ratio, sec = ["—", "—", "—"], "", ["" for _ in sec_keys]
            lines.append("| " + " | ".join([sname, *cells, ratio, *sec, _status(e)]) + " |")
        lines.append("")
    return "\n".join(lines)
