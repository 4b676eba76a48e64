"""libopus for the agent's own media path: decoding with concealment and FEC, and a voice encoder.

aiortc decodes and encodes Opus through FFmpeg (PyAV), whose libopus wrapper can neither conceal a
lost packet with libopus's packet-loss concealment (PLC) nor decode the in-band FEC a browser sends
(an empty packet means end of stream to FFmpeg, and it has no decode-FEC option), and whose encoder
aiortc fixes at stereo 96 kbit/s. The agent therefore talks to libopus itself, through opuslib-next's
ctypes binding (maintained, pure Python) as packaged by opuslib-next-bundled, whose wheels carry
libopus 1.5 for Linux x86_64 and arm64: the container, CI and a laptop run the same library, with
no system package to install, and 1.5 reports in-band FEC itself (``opus_packet_has_lbrr``).
It uses the binding's low-level functions with buffers allocated once per codec, so a 20 ms frame
costs one C call and one copy.

libopus is loaded when the first codec is made, never at import.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

MAX_FRAME_MS = 120
"""The longest Opus packet (RFC 6716): buffers are sized for it."""
MAX_PACKET_BYTES = 1500
"""One RTP payload; libopus never needs more at voice bitrates."""

#: OPUS_APPLICATION_VOIP: tuned for speech intelligibility, the mode WebRTC uses for voice.
APPLICATION_VOIP = 2048
#: OPUS_BANDWIDTH_WIDEBAND ... FULLBAND, for ``max_bandwidth``.
BANDWIDTHS = {
    "narrowband": 1101,
    "mediumband": 1102,
    "wideband": 1103,
    "superwideband": 1104,
    "fullband": 1105,
}
OPUS_SIGNAL_VOICE = 3001


@dataclass(frozen=True, kw_only=True)
class OpusSettings:
    """The agent's Opus, both ways: what it encodes for the caller and what it asks the caller for."""

    bitrate: int = 32_000
    complexity: int = 5
    """Measured (``python -m bench.codec`` and the echo benchmark): below 2 libopus drops features and
    the spectral distance on voice triples; 2 to 4 cost 10-20% less encoding than 5 on their own, but
    through the whole call (the benchmark's clean relayed echo) chirps came back torn at 2 (33-71%
    intact over three runs) and whole at 5 (93%). Silent frames cost no encoding at any complexity."""
    fec: bool = True
    expected_loss: int = 10
    """Percent of packets the encoder's FEC is sized for."""

    def __post_init__(self) -> None:
        if not 6_000 <= self.bitrate <= 510_000:
            raise ValueError(f"the Opus bitrate must be 6000-510000 bit/s, got {self.bitrate}")
        if not 0 <= self.complexity <= 10:
            raise ValueError(f"the Opus complexity must be 0-10, got {self.complexity}")
        if not 0 <= self.expected_loss <= 100:
            raise ValueError(f"the expected loss must be 0-100 percent, got {self.expected_loss}")

    def encoder(self, sample_rate: int) -> OpusEncoder:
        return OpusEncoder(
            sample_rate=sample_rate,
            bitrate=self.bitrate,
            complexity=self.complexity,
            fec=self.fec,
            expected_loss=self.expected_loss,
        )

    def answer_parameters(self) -> dict[str, int]:
        """The fmtp the answer gives Opus (RFC 7587): mono, in-band FEC, at most our bitrate."""
        return {
            "minptime": 10,
            "useinbandfec": 1,
            "stereo": 0,
            "sprop-stereo": 0,
            "maxaveragebitrate": self.bitrate,
        }


class OpusError(RuntimeError):
    """libopus refused a call (a corrupt packet, a bad setting)."""


@cache
def _binding() -> tuple[ModuleType, ModuleType, ModuleType]:
    """opuslib-next's decoder, encoder and ctl modules; importing them loads libopus."""
    try:
        from opuslib_next.api import ctl, decoder, encoder  # importing loads libopus
    except Exception as error:  # opuslib-next raises a bare Exception when libopus is missing
        raise OpusError(
            "libopus could not be loaded from opuslib-next-bundled: reinstall it (make deps)"
        ) from error
    return decoder, encoder, ctl


def _check(result: int, what: str) -> int:
    if result < 0:
        raise OpusError(f"libopus {what} failed with error {result}")
    return result


class OpusDecoder:
    """Decodes one stream to s16 PCM at ``sample_rate`` (8, 12, 16, 24 or 48 kHz), ``channels`` 1 or 2.

    libopus decodes straight to the rate the caller asks for, so the voice's 16 kHz input needs no
    resampler. A stereo stream decoded with ``channels=1`` is mixed down by libopus.
    """

    def __init__(self, *, sample_rate: int = 16_000, channels: int = 1) -> None:
        decoder, _, _ = _binding()
        self._api = decoder
        self.sample_rate = sample_rate
        self.channels = channels
        self._state: Any = decoder.create_state(sample_rate, channels)
        self._max_samples = sample_rate * MAX_FRAME_MS // 1000
        self._pcm = (ctypes.c_int16 * (self._max_samples * channels))()
        self._pcm_pointer = ctypes.cast(self._pcm, ctypes.POINTER(ctypes.c_int16))
        self._bytes_per_sample = 2 * channels

    def decode(self, payload: bytes) -> bytes:
        """One packet's audio."""
        return self._run(payload, self._max_samples, fec=False)

    def conceal(self, samples: int) -> bytes:
        """``samples`` of packet-loss concealment for a packet that never came."""
        return self._run(None, samples, fec=False)

    def recover(self, next_payload: bytes, samples: int) -> bytes:
        """The lost packet's audio from the in-band FEC of the packet after it (PLC if it has none).

        ``samples`` must be the lost packet's duration; the next packet is still decoded normally
        when its turn comes."""
        return self._run(next_payload, samples, fec=True)

    def _run(self, payload: bytes | None, samples: int, *, fec: bool) -> bytes:
        if self._state is None:
            raise OpusError("the decoder is closed")
        length = len(payload) if payload else 0
        produced = self._api.libopus_decode(
            self._state, payload or None, length, self._pcm_pointer, samples, int(fec)
        )
        _check(produced, "decode")
        return ctypes.string_at(self._pcm, produced * self._bytes_per_sample)

    def samples_in(self, payload: bytes) -> int:
        """The packet's duration in samples at this decoder's rate (0 for an unreadable packet)."""
        if self._state is None:
            return 0
        result = self._api.libopus_get_nb_samples(self._state, payload, len(payload))
        return max(result, 0)

    def close(self) -> None:
        """Free the libopus state now rather than when the garbage collector gets to it."""
        state, self._state = self._state, None
        if state is not None:
            self._api.destroy(state)


class OpusEncoder:
    """Encodes s16 mono PCM at ``sample_rate`` in 20 ms frames for voice.

    ``fec`` adds in-band forward error correction sized for ``expected_loss`` percent of packets
    lost (libopus spends bits on it only when the expected loss is above zero). ``complexity`` (0-10)
    trades CPU for quality.
    """

    FRAME_SECONDS = 0.020

    def __init__(
        self,
        *,
        sample_rate: int = 24_000,
        bitrate: int = 32_000,
        complexity: int = 5,
        fec: bool = True,
        expected_loss: int = 10,
        max_bandwidth: str = "superwideband",
    ) -> None:
        _, encoder, ctl = _binding()
        self._api = encoder
        self.sample_rate = sample_rate
        self.frame_samples = int(sample_rate * self.FRAME_SECONDS)
        self._state: Any = encoder.create_state(sample_rate, 1, APPLICATION_VOIP)
        for setting, value in (
            (ctl.set_bitrate, bitrate),
            (ctl.set_complexity, complexity),
            (ctl.set_inband_fec, int(fec)),
            (ctl.set_packet_loss_perc, expected_loss if fec else 0),
            (ctl.set_max_bandwidth, BANDWIDTHS[max_bandwidth]),
            (ctl.set_signal, OPUS_SIGNAL_VOICE),
        ):
            try:
                encoder.encoder_ctl(self._state, setting, value)
            except Exception as error:  # opuslib-next's OpusError names libopus's error code
                self.close()
                raise OpusError(f"libopus refused an encoder setting: {error}") from error
        self._out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        self._int16_pointer = ctypes.POINTER(ctypes.c_int16)

    def encode(self, pcm: bytes) -> bytes:
        """One 20 ms frame of s16 mono PCM (``frame_samples`` samples) to one Opus packet."""
        if self._state is None:
            raise OpusError("the encoder is closed")
        size = self._api.libopus_encode(
            self._state,
            ctypes.cast(ctypes.c_char_p(pcm), self._int16_pointer),
            len(pcm) // 2,
            self._out,
            MAX_PACKET_BYTES,
        )
        _check(size, "encode")
        return self._out.raw[:size]

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            self._api.destroy(state)


def has_fec(payload: bytes) -> bool:
    """Whether an Opus packet carries in-band FEC (LBRR) for the packet before it (libopus 1.5)."""
    return _has_lbrr()(payload, len(payload)) == 1


@cache
def _has_lbrr() -> Any:
    _binding()
    from opuslib_next.api import libopus

    function = libopus.opus_packet_has_lbrr
    function.argtypes = (ctypes.c_char_p, ctypes.c_int32)
    function.restype = ctypes.c_int
    return function
