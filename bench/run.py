"""`make bench`: measure the agent (or the bare aiortc echo peer) and print a table and JSON.

    .venv/bin/python -m bench [--target agent|baseline|both] [--call-seconds 30] ...

Every figure and the machine it ran on go to bench/results/latest.json (and a timestamped copy).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.network import measure_network
from bench.processes import REPO, rss_bytes, start_target, thread_count
from bench.scenarios import idle_usage, measure_calls, measure_setup
from testbed.turn import TurnServer, TurnServerUnavailable

RESULTS = REPO / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Voice agent benchmarks.")
    parser.add_argument(
        "--target",
        choices=["agent", "baseline", "both", "leaky-baseline"],
        default="agent",
        help="agent: voice-agent --voice echo; baseline: a bare aiortc peer that sends "
        "received frames straight back (the calibration floor); both: one after the other; "
        "leaky-baseline: the baseline mixing calls at -40 dB, to prove the crosstalk check fails",
    )
    parser.add_argument(
        "--call-seconds",
        type=float,
        default=30.0,
        help="length of the single call that measures latency growth (default 30)",
    )
    parser.add_argument("--concurrent", type=int, default=5, help="calls in the concurrency run (default 5)")
    parser.add_argument(
        "--concurrent-seconds", type=float, default=12.0, help="length of the concurrency run (default 12)"
    )
    parser.add_argument("--setups", type=int, default=5, help="calls set up one after another for timing")
    parser.add_argument("--startups", type=int, default=5, help="process starts timed to the first /ping")
    parser.add_argument(
        "--turn-call-seconds", type=float, default=8.0, help="length of the relayed echo call (0 to skip)"
    )
    parser.add_argument("--no-turn", action="store_true", help="skip the measurements through coturn")
    parser.add_argument(
        "--network-seconds",
        type=float,
        default=20.0,
        help="length of each impaired-network call (loss, delay, jitter on the caller's leg; 0 to skip)",
    )
    parser.add_argument(
        "--network-long-seconds",
        type=float,
        default=60.0,
        help="length of the long call with loss and jitter both ways (the delay-growth check; 0 to skip)",
    )
    parser.add_argument(
        "--conditions",
        help="comma-separated words; only the impaired networks whose name contains one of them run",
    )
    parser.add_argument(
        "--only-network", action="store_true", help="measure only the impaired-network calls (and CPU there)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--agent-command",
        metavar="COMMAND",
        help="run this instead of .venv/bin/voice-agent (it gets the same flags), "
        "e.g. to compare another build of the agent",
    )
    parser.add_argument(
        "--reference-command",
        metavar="COMMAND",
        help="also measure this program as target 'reference', in the same run (it gets the agent's flags): "
        "another agent to compare with side by side",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in ("aiortc", "aioice", "av", "numpy", "fastapi", "uvicorn"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
            ).stdout.strip()
            or None
        )
    except OSError:
        commit = None
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "versions": versions,
        "commit": commit,
        "loadavg_start": os.getloadavg(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _command(target: str, args: argparse.Namespace) -> str | None:
    return args.reference_command if target == "reference" else args.agent_command


async def bench_target(target: str, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"target": target}
    log = logs / f"{target}.log"
    if not args.only_network:
        await _measure_direct(target, args, log, result)
    if not args.no_turn:
        await _measure_relayed(target, args, log, result)
    return result


async def _measure_direct(target: str, args: argparse.Namespace, log: Path, result: dict[str, Any]) -> None:
    print(f"[{target}] timing {args.startups} starts to the first healthy /ping", file=sys.stderr)
    startups = []
    for _ in range(args.startups):
        started = await asyncio.to_thread(start_target, target, log=log, agent_command=_command(target, args))
        startups.append(started.startup_seconds)
        started.stop()
    result["startup"] = {
        "runs": [round(s, 3) for s in startups],
        "best_s": min(startups),
        "median_s": statistics.median(startups),
    }

    process = await asyncio.to_thread(start_target, target, log=log, agent_command=_command(target, args))
    try:
        print(f"[{target}] direct: {args.setups} call set-ups", file=sys.stderr)
        result["setup_direct"] = await measure_setup(process.url, args.setups)
        await asyncio.sleep(1.0)
        result["idle"] = idle = await idle_usage(process.pid, 2.0)
        print(f"[{target}] one call of {args.call_seconds:.0f} s", file=sys.stderr)
        result["one_call"] = await measure_calls(
            process.url, process.pid, calls=1, seconds=args.call_seconds, idle_rss=int(idle["rss_mb"] * 2**20)
        )
        await asyncio.sleep(1.5)
        idle_rss = rss_bytes(process.pid)
        result["idle_after_calls_rss_mb"] = idle_rss / 2**20
        result["idle_after_calls_threads"] = thread_count(process.pid)
        print(
            f"[{target}] {args.concurrent} concurrent calls of {args.concurrent_seconds:.0f} s",
            file=sys.stderr,
        )
        result["concurrent"] = await measure_calls(
            process.url,
            process.pid,
            calls=args.concurrent,
            seconds=args.concurrent_seconds,
            idle_rss=idle_rss,
        )
    finally:
        process.stop()


async def _measure_relayed(target: str, args: argparse.Namespace, log: Path, result: dict[str, Any]) -> None:
    try:
        turn = await asyncio.to_thread(TurnServer.start, username="bench")
    except TurnServerUnavailable as error:
        raise SystemExit(f"bench: {error} (or run with --no-turn)") from None
    try:
        relayed = await asyncio.to_thread(
            start_target,
            target,
            ice_servers="static",
            relay_only=True,
            env=turn.ice_server_env(),
            log=log,
            agent_command=_command(target, args),
        )
        try:
            if not args.only_network:
                print(f"[{target}] through coturn: {args.setups} call set-ups", file=sys.stderr)
                result["setup_turn"] = await measure_setup(relayed.url, args.setups)
            if args.turn_call_seconds > 0 and not args.only_network:
                idle_rss = rss_bytes(relayed.pid)
                result["turn_call"] = await measure_calls(
                    relayed.url, relayed.pid, calls=1, seconds=args.turn_call_seconds, idle_rss=idle_rss
                )
            if args.network_seconds > 0 or args.network_long_seconds > 0:
                print(f"[{target}] impaired networks on the caller's leg", file=sys.stderr)
                result["network"] = await measure_network(
                    relayed.url,
                    relayed.pid,
                    turn.port,
                    seconds=args.network_seconds,
                    long_seconds=args.network_long_seconds,
                    only=args.conditions.split(",") if args.conditions else None,
                )
        finally:
            relayed.stop()
    finally:
        turn.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = RESULTS / f"logs-{stamp}"
    logs.mkdir()
    targets = ["baseline", "agent"] if args.target == "both" else [args.target]
    if args.reference_command:
        targets.append("reference")
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_utc": stamp,
        "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "targets": {},
    }
    for target in targets:
        results["targets"][target] = await bench_target(target, args, logs)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["duration_s"] = time.monotonic() - started
    results["checks"] = {t: report.checks(r) for t, r in results["targets"].items()}
    for reference in ("reference", "baseline"):
        ratio = report.cpu_ratio(results, "agent", reference)
        if ratio is not None:
            results["checks"].setdefault("agent", []).append(ratio)
    results["logs"] = str(logs)
    return results


def _finite(value: Any) -> Any:
    """Strict JSON has no NaN or infinity (silence is -inf dBFS): write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = asyncio.run(run(args))
    except (RuntimeError, TimeoutError, OSError) as error:
        # A call that could not be set up (refused, at capacity, ICE failed): say which, plainly.
        print(f"bench: the run stopped: {error!r} (process logs in {RESULTS}/logs-*)", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(results), indent=2, default=float, allow_nan=False)
    args.output.write_text(text)
    (RESULTS / f"bench-{results['started_utc']}.json").write_text(text)
    print(report.table(results))
    print(f"\nJSON: {args.output}")
    failed = [c for checks in results["checks"].values() for c in checks if c["passed"] is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
