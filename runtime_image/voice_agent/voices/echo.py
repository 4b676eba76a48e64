"""The ``echo`` voice: the caller hears themselves, through the same 16 kHz-in / 24 kHz-out path
as a model voice. It needs no AWS account and is what tests and benchmarks measure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from voice_agent.audio import AlignedResampler, pcm_frame
from voice_agent.contract import VOICE_ECHO
from voice_agent.voices.base import INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE, VoiceOutput, VoiceSession

if TYPE_CHECKING:
    from voice_agent.metrics import Metrics
    from voice_agent.tools import Tool


class EchoSession:
    def __init__(self, output: VoiceOutput) -> None:
        self._output = output
        self._resampler: AlignedResampler | None = None

    async def start(self) -> None:
        # Per session: a shared resampler would mix callers' audio.
        self._resampler = AlignedResampler(OUTPUT_SAMPLE_RATE)

    async def send_audio(self, pcm: bytes) -> None:
        if self._resampler is None or not pcm:
            return
        # Straight to the output track: no extra buffering in the echo path.
        self._output.play(self._resampler.resample(pcm_frame(pcm, INPUT_SAMPLE_RATE)))

    async def close(self) -> None:
        self._resampler = None


class EchoVoice:
    name = VOICE_ECHO
    paced_by_caller = True

    def open_session(self, *, call_id: str, output: VoiceOutput) -> VoiceSession:
        return EchoSession(output)


def create(options: None, *, region: str | None, metrics: Metrics, tools: Sequence[Tool]) -> EchoVoice:
    """The voice for ``--voice echo`` (the voice registry's factory): it has no settings and no tools."""
    return EchoVoice()
