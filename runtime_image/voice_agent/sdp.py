"""Edits to the answer SDP the agent returns: candidates, and what it asks of the caller's Opus.

aiortc answers with its own codec parameters (none for Opus), so the browser would send stereo and
no FEC. The answer is text the agent hands to the browser, so the parameters are added there; the
agent's own aiortc does not read them back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_RTPMAP_OPUS = re.compile(r"^a=rtpmap:(\d+) opus/48000(?:/\d)?\s*$", re.IGNORECASE | re.MULTILINE)


def keep_relay_candidates(sdp: str) -> str:
    """Relay-only answers list only ``typ relay`` candidates: browsers waste seconds on the others."""
    kept = [line for line in sdp.splitlines() if not line.startswith("a=candidate:") or " typ relay" in line]
    return "\r\n".join(kept) + "\r\n"


def opus_payload_type(sdp: str) -> int | None:
    """The payload type of Opus in the (first) audio section, or None if it has no Opus."""
    match = _RTPMAP_OPUS.search(sdp)
    return int(match.group(1)) if match else None


def with_opus_parameters(sdp: str, payload_type: int, parameters: Mapping[str, int | str]) -> str:
    """The SDP with these fmtp parameters on Opus (RFC 7587), replacing any it had."""
    fmtp = f"a=fmtp:{payload_type} " + ";".join(f"{k}={v}" for k, v in parameters.items())
    lines = [line for line in sdp.splitlines() if not line.startswith(f"a=fmtp:{payload_type} ")]
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.lower().startswith(f"a=rtpmap:{payload_type} opus/"):
            out.append(fmtp)
    return "\r\n".join(out) + "\r\n"


def offers_fec(sdp: str, payload_type: int) -> bool:
    """Whether the offer's Opus says it takes in-band FEC (``useinbandfec=1``), as browsers do: a
    sender that can decode FEC also sends it once it sees loss, which asking again would only hide."""
    prefix = f"a=fmtp:{payload_type} "
    for line in sdp.splitlines():
        if line.startswith(prefix):
            parameters = dict(
                part.strip().split("=", 1) for part in line[len(prefix) :].split(";") if "=" in part
            )
            return parameters.get("useinbandfec", "0").strip() == "1"
    return False
