"""``voice-agent``: flags (each with an environment variable) -> settings -> one uvicorn worker."""

from __future__ import annotations

import argparse
import sys

from voice_agent import contract as names
from voice_agent.settings import ICE_MODES, METRICS_MODES, TRACES_MODES, Settings, SettingsError
from voice_agent.voices import VOICES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voice-agent",
        description="A WebRTC voice agent (AgentCore Runtime service contract on /ping and /invocations).",
        epilog="Every flag can also be set by its environment variable (VOICE_AGENT_*); flags win.",
    )
    parser.add_argument("--host", help=f"listen address ({names.ENV_HOST}, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"listen port ({names.ENV_PORT}, default 8080)")
    voices = "; ".join(f"{name}: {entry.summary}" for name, entry in VOICES.items())
    parser.add_argument(
        "--voice",
        choices=tuple(VOICES),
        help=f"{voices} ({names.ENV_VOICE}, default {Settings.voice})",
    )
    parser.add_argument(
        "--ice-servers",
        choices=ICE_MODES,
        help=(
            f"none, static ({names.ENV_ICE_SERVER_URLS}...) or kvs ({names.ENV_ICE_SERVERS}, default none)"
        ),
    )
    parser.add_argument(
        "--relay-only",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"TURN relay only ({names.ENV_RELAY_ONLY})",
    )
    parser.add_argument("--stage", help=f"stage name for logs and metrics ({names.ENV_STAGE})")
    parser.add_argument(
        "--max-calls", type=int, help=f"concurrent call cap ({names.ENV_MAX_CALLS}, default 4)"
    )
    parser.add_argument(
        "--audio-timeout-seconds",
        type=float,
        help=f"end a call after this long without audio ({names.ENV_AUDIO_TIMEOUT_SECONDS}, default 30)",
    )
    parser.add_argument(
        "--metrics",
        choices=METRICS_MODES,
        help=f"emf: CloudWatch Embedded Metric Format lines on stdout ({names.ENV_METRICS}, default off)",
    )
    parser.add_argument(
        "--traces",
        choices=TRACES_MODES,
        help=f"otel: OpenTelemetry spans to the global provider, e.g. ADOT ({names.ENV_TRACES}, default off)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            voice=args.voice,
            ice_servers=args.ice_servers,
            relay_only=args.relay_only,
            stage=args.stage,
            max_calls=args.max_calls,
            audio_timeout_seconds=args.audio_timeout_seconds,
            metrics=args.metrics,
            traces=args.traces,
        )
    except SettingsError as error:
        print(f"voice-agent: {error}", file=sys.stderr)
        raise SystemExit(2) from None

    import uvicorn

    from voice_agent.app import create_app
    from voice_agent.logs import configure_logging
    from voice_agent.reclaim import freeze_start_up_objects

    configure_logging()
    app = create_app(settings)
    freeze_start_up_objects()  # what exists now lives as long as the process
    # One worker: calls live in this process's memory.
    uvicorn.run(app, host=settings.host, port=settings.port, workers=1, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
