"""The benchmark's targets (latency, growth, start-up, silence, crosstalk, impaired networks, CPU) as
checks, and the human-readable table."""

from __future__ import annotations

import math
from typing import Any

TARGET_LATENCY_MS = 165.0
MAX_GROWTH_MS = 10.0
""""No growth over a 30 s call": the last five echoes' median within 10 ms of the first five's."""
TARGET_STARTUP_S = 1.5
SILENCE_MAX_ABS = 16
"""Digital silence after Opus: |sample| <= 16 (-66 dBFS); another caller's chirp would be ~16000."""
CROSSTALK_MAX_DB = -50.0
"""Another caller's chirp, relative to its own level: a shared resampler leaked at -43 dB."""


def _check(name: str, value: Any, limit: str, passed: bool | None) -> dict[str, Any]:
    """``passed`` None: not measured in this run (a call too short for the growth check)."""
    return {"check": name, "value": value, "limit": limit, "passed": None if passed is None else bool(passed)}


LOSS_INTACT_SHARE = 0.75
"""5% loss towards the agent from a sender without FEC: at least 75% of chirps intact ..."""
LOSS_EXTRA_DELAY_MS = 30.0
"""... with at most 30 ms more delay than the same network without loss."""
LONG_GROWTH_MS = 10.0
"""The long lossy, jittery call: no delay growth (within the 10 ms this method resolves)."""
MAX_TURN_KBPS = 40.0
"""TURN bitrate per direction (the agent's audio towards the caller, TURN framing included)."""
CPU_RATIO = 0.5
"""CPU per call-second against the reference measured in the same run (--reference-command)."""


def _row(result: dict[str, Any], words: str) -> dict[str, Any] | None:
    return next((r for r in result.get("network", []) if words in r["condition"]), None)


def network_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The impaired-network targets, for one target's rows."""
    found: list[dict[str, Any]] = []
    plain, lossy = _row(result, "+20 ms"), _row(result, "5% loss towards the agent")
    if lossy is not None:
        share = lossy["intact_share"]
        found.append(
            _check(
                "5% loss towards the agent: chirps intact",
                None if share is None else f"{share:.0%}",
                f">= {LOSS_INTACT_SHARE:.0%}",
                share is not None and share >= LOSS_INTACT_SHARE,
            )
        )
        if plain is not None and plain["condition"] == "+20 ms":
            extra = _difference(lossy["median_latency_ms"], plain["median_latency_ms"])
            found.append(
                _check(
                    "5% loss towards the agent: extra delay ms (vs +20 ms without loss)",
                    _r(extra),
                    f"<= {LOSS_EXTRA_DELAY_MS:.0f}",
                    extra is not None and extra <= LOSS_EXTRA_DELAY_MS,
                )
            )
    long = next((r for r in result.get("network", []) if "(long)" in r["condition"]), None)
    if long is not None:
        growth = long["growth_ms"]
        found.append(
            _check(
                f"{long['seconds']:.0f} s call, 5% loss and jitter both ways: delay growth ms",
                _r(growth),
                f"<= {LONG_GROWTH_MS:.0f}",
                None if growth is None else growth <= LONG_GROWTH_MS,
            )
        )
    rates = [r["kbps_towards_caller"] for r in result.get("network", [])]
    if rates:
        found.append(
            _check(
                "TURN bitrate towards the caller, kbit/s (max over networks)",
                _r(max(rates)),
                f"<= {MAX_TURN_KBPS:.0f}",
                max(rates) <= MAX_TURN_KBPS,
            )
        )
    return found


def cpu_ratio(results: dict[str, Any], target: str, reference: str) -> dict[str, Any] | None:
    """Median over the impaired networks of CPU per call-second, ``target`` over ``reference``."""
    targets = results["targets"]
    if target not in targets or reference not in targets:
        return None
    ratios = [
        mine["target_cpu_s_per_call_s"] / theirs["target_cpu_s_per_call_s"]
        for mine, theirs in zip(
            targets[target].get("network", []), targets[reference].get("network", []), strict=False
        )
        if theirs["target_cpu_s_per_call_s"] > 0
    ]
    if not ratios:
        return None
    ratio = sorted(ratios)[len(ratios) // 2]
    return _check(
        f"CPU per call-second, {target} / {reference} (median over networks, same run)",
        _r(ratio, 2),
        f"<= {CPU_RATIO}",
        ratio <= CPU_RATIO,
    )


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = network_checks(result)
    if "one_call" not in result:  # --only-network
        return found
    for key in ("setup_direct", "setup_turn"):
        if key in result:
            requests = result[key]["setup_requests_per_call"]
            found.append(_check(f"signaling requests per call ({key[6:]})", requests, "== 2", requests == 2))
    one = result["one_call"]
    caller = one["callers"][0]
    found.append(
        _check(
            "echoes found (1 call)",
            f"{one['echoes_found']}/{one['chirps_sent']}",
            "all",
            one["chirps_sent"] > 0 and one["echoes_found"] == one["chirps_sent"],
        )
    )
    median = one["median_latency_ms"]
    found.append(
        _check(
            "median echo latency ms (1 call)",
            _r(median),
            f"<= {TARGET_LATENCY_MS:.0f}",
            median is not None and median <= TARGET_LATENCY_MS,
        )
    )
    growth = caller["growth_ms"]
    found.append(
        _check(
            "latency growth ms (last 5 - first 5)",
            _r(growth),
            f"<= {MAX_GROWTH_MS:.0f}",
            None if growth is None else growth <= MAX_GROWTH_MS,
        )
    )
    startup = result["startup"]["median_s"]
    found.append(
        _check(
            "first healthy /ping s (median)",
            _r(startup, 3),
            f"< {TARGET_STARTUP_S}",
            startup < TARGET_STARTUP_S,
        )
    )
    many = result["concurrent"]
    found.append(
        _check(
            f"echoes found ({many['calls']} calls)",
            f"{many['echoes_found']}/{many['chirps_sent']}",
            "all",
            many["chirps_sent"] > 0 and many["echoes_found"] == many["chirps_sent"],
        )
    )
    if many["crosstalk_gain"] is not None:
        gain = many["crosstalk_gain"]
        found.append(
            _check(
                f"no crosstalk: other callers' chirps heard, dB ({many['calls']} calls)",
                "silent" if gain == 0 else round(20 * math.log10(gain), 1),
                f"<= {CROSSTALK_MAX_DB:.0f}",
                gain <= 10 ** (CROSSTALK_MAX_DB / 20),
            )
        )
    found.append(
        _check(
            f"digital silence outside own echoes, max |sample| ({many['calls']} calls)",
            many["leak_max_abs"],
            f"<= {SILENCE_MAX_ABS}",
            many["leak_max_abs"] <= SILENCE_MAX_ABS,
        )
    )
    return found


def _db(gain: float | None) -> str | None:
    if gain is None:
        return None
    return "silent" if gain == 0 else f"{20 * math.log10(gain):.1f}"


def _verdict(passed: bool | None) -> str:
    return "SKIP" if passed is None else "PASS" if passed else "FAIL"


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> str:
    targets = results["targets"]
    names = list(targets)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, getter: Any, digits: int = 1) -> None:
        values = []
        for name in names:
            try:
                values.append(_fmt(getter(targets[name]), digits))
            except (KeyError, IndexError, TypeError):
                values.append("-")
        rows.append((label, values))

    row("first healthy /ping, median s", lambda r: r["startup"]["median_s"], 3)
    row("first healthy /ping, best s", lambda r: r["startup"]["best_s"], 3)
    for key, label in (("setup_direct", "direct"), ("setup_turn", "via coturn")):
        row(f"{label}: signaling requests/call", lambda r, k=key: r[k]["setup_requests_per_call"])
        row(f"{label}: offer->answer ms (median)", lambda r, k=key: r[k]["median_offer_to_answer_ms"])
        row(f"{label}: connect ms (median)", lambda r, k=key: r[k]["median_connect_ms"])
        row(f"{label}: candidate type", lambda r, k=key: ",".join(r[k]["candidate_types"]))
    row("1 call: median echo latency ms", lambda r: r["one_call"]["median_latency_ms"])
    row("1 call: p90 echo latency ms", lambda r: r["one_call"]["p90_latency_ms"])
    row("1 call: growth ms (last5-first5)", lambda r: r["one_call"]["callers"][0]["growth_ms"])
    row("1 call: echoes found", lambda r: f"{r['one_call']['echoes_found']}/{r['one_call']['chirps_sent']}")
    row("1 call: torn echoes (score < 0.97)", lambda r: r["one_call"]["torn_echoes"])
    row("1 call: CPU-s per call-s", lambda r: r["one_call"]["target_cpu_s_per_call_s"], 4)
    row("1 call: RSS per call MB", lambda r: r["one_call"]["rss_per_call_mb"])
    row("1 call: client CPU-s per s", lambda r: r["one_call"]["client_cpu_s_per_s"], 3)
    row("idle: RSS MB", lambda r: r["idle"]["rss_mb"])
    row("idle: CPU-s per s", lambda r: r["idle"]["cpu_s_per_s"], 4)
    row("N calls: N", lambda r: r["concurrent"]["calls"])
    row("N calls: median echo latency ms", lambda r: r["concurrent"]["median_latency_ms"])
    row(
        "N calls: echoes found",
        lambda r: f"{r['concurrent']['echoes_found']}/{r['concurrent']['chirps_sent']}",
    )
    row("N calls: torn echoes (score < 0.97)", lambda r: r["concurrent"]["torn_echoes"])
    row("N calls: CPU-s per call-s", lambda r: r["concurrent"]["target_cpu_s_per_call_s"], 4)
    row("N calls: RSS per call MB", lambda r: r["concurrent"]["rss_per_call_mb"])
    row("N calls: client CPU-s per s", lambda r: r["concurrent"]["client_cpu_s_per_s"], 3)
    row("N calls: max |sample| off own echo", lambda r: r["concurrent"]["leak_max_abs"])
    row("N calls: others' chirps heard, dB", lambda r: _db(r["concurrent"]["crosstalk_gain"]))
    row("via coturn: median echo latency ms", lambda r: r["turn_call"]["median_latency_ms"])

    width = max(len(label) for label, _ in rows)
    col = max(12, *(len(n) for n in names))
    lines = [f"{'':<{width}}  " + "  ".join(f"{n:>{col}}" for n in names)]
    lines += [f"{label:<{width}}  " + "  ".join(f"{v:>{col}}" for v in values) for label, values in rows]
    machine = results["machine"]
    lines.append("")
    lines.append(
        f"machine: {machine['cores']} cores ({machine['cpu']}), Python {machine['python']}, "
        f"aiortc {machine['versions']['aiortc']}, load average {machine['loadavg_start'][0]:.2f} at "
        f"start, {machine['loadavg_end'][0]:.2f} at end"
    )
    lines.append(
        "compare only with targets measured in the same run (--target both, --reference-command): "
        "CPU figures on a shared machine drift between days"
    )
    for name, found in results["checks"].items():
        lines.append("")
        lines.append(f"targets ({name}):")
        for c in found:
            lines.append(f"  {_verdict(c['passed'])}  {c['check']}: {c['value']} (target {c['limit']})")
    lines += network_table(results)
    return "\n".join(lines)


def network_table(results: dict[str, Any]) -> list[str]:
    """One row per impaired network: delay, intact chirps, growth, CPU and the agent's TURN bitrate."""
    targets = {name: r["network"] for name, r in results["targets"].items() if r.get("network")}
    if not targets:
        return []
    lines = [
        "",
        "impaired networks on the caller's leg (relay-only through coturn; the caller receives "
        "like a browser):",
    ]
    conditions = [row["condition"] for row in next(iter(targets.values()))]
    width = max(len(c) for c in conditions)
    header = "".join(f"  {name + ': ms / intact / growth / CPU / kbps':>52}" for name in targets)
    lines.append(f"{'':<{width}}{header}")
    for index, condition in enumerate(conditions):
        cells = []
        for rows in targets.values():
            row = rows[index]
            share = row["intact_share"]
            cells.append(
                f"{_fmt(row['median_latency_ms']):>8} / {('-' if share is None else f'{share:.0%}'):>5} / "
                f"{_fmt(row['growth_ms']):>6} / {_fmt(row['target_cpu_s_per_call_s'], 4):>7} / "
                f"{_fmt(row['kbps_towards_caller']):>5}"
            )
        lines.append(f"{condition:<{width}}" + "".join(f"  {c:>52}" for c in cells))
    return lines
