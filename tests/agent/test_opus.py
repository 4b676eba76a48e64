"""libopus through opuslib-next-bundled: the decoder the receive path uses and the voice encoder."""

from __future__ import annotations

import numpy as np
import pytest
from voice_agent.opus import OpusDecoder, OpusEncoder, OpusError, OpusSettings, has_fec

from tests.support import signals

RATE = 24_000
FRAME = 480  # 20 ms at 24 kHz


def speechlike(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A voiced sound: harmonics of a gliding pitch, syllables on and off."""
    t = np.arange(int(rate * seconds)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = (np.sin(2 * np.pi * 3 * t) > -0.2).astype(float)
    return (0.25 * 32767 * voiced / np.max(np.abs(voiced)) * envelope).astype(np.int16)


def packets_of(samples: np.ndarray, encoder: OpusEncoder) -> list[bytes]:
    return [
        encoder.encode(samples[i : i + FRAME].tobytes()) for i in range(0, len(samples) - FRAME + 1, FRAME)
    ]


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    reference, decoded = reference.astype(np.float64), decoded.astype(np.float64)
    noise = reference - decoded
    return 10 * np.log10(np.dot(reference, reference) / max(np.dot(noise, noise), 1e-9))


def test_every_packet_decodes_to_exactly_20_ms_at_the_rate_asked_for() -> None:
    packets = packets_of(speechlike(), OpusSettings().encoder(RATE))
    for rate, samples in ((16_000, 320), (24_000, 480), (48_000, 960)):
        decoder = OpusDecoder(sample_rate=rate)
        assert {len(decoder.decode(p)) for p in packets} == {samples * 2}
        assert decoder.samples_in(packets[0]) == samples
        decoder.close()


def test_the_encoder_is_mono_and_near_its_bitrate() -> None:
    packets = packets_of(speechlike(4.0), OpusEncoder(sample_rate=RATE, bitrate=32_000))
    kbps = sum(len(p) for p in packets) * 8 / 4.0 / 1000
    assert 20 <= kbps <= 36
    assert all(p[0] & 0x04 == 0 for p in packets)  # the TOC's stereo bit is clear


def test_in_band_fec_is_there_only_when_asked_for() -> None:
    with_fec = packets_of(speechlike(2.0), OpusEncoder(fec=True, expected_loss=10))
    without = packets_of(speechlike(2.0), OpusEncoder(fec=False))
    assert sum(has_fec(p) for p in with_fec) > len(with_fec) // 2
    assert not any(has_fec(p) for p in without)


def test_a_lost_packet_recovered_from_fec_is_closer_to_the_original_than_concealment() -> None:
    source = speechlike(2.0)
    packets = packets_of(source, OpusEncoder(fec=True, expected_loss=20))
    lost = [n for n in range(10, len(packets) - 1, 7) if has_fec(packets[n + 1])]
    assert lost

    def decode_all(recover: bool) -> np.ndarray:
        decoder = OpusDecoder(sample_rate=RATE)
        out = []
        for n, packet in enumerate(packets):
            if n in lost:
                out.append(decoder.recover(packets[n + 1], FRAME) if recover else decoder.conceal(FRAME))
            else:
                out.append(decoder.decode(packet))
        return np.frombuffer(b"".join(out), dtype=np.int16)

    clean_decoder = OpusDecoder(sample_rate=RATE)
    clean = np.frombuffer(b"".join(clean_decoder.decode(p) for p in packets), dtype=np.int16)
    frames = [slice(n * FRAME, (n + 1) * FRAME) for n in lost]
    recovered, concealed = decode_all(recover=True), decode_all(recover=False)
    fec_snr = np.mean([snr_db(clean[f], recovered[f]) for f in frames])
    plc_snr = np.mean([snr_db(clean[f], concealed[f]) for f in frames])
    assert fec_snr > plc_snr + 3


def test_concealment_fades_to_silence_when_nothing_comes() -> None:
    decoder = OpusDecoder(sample_rate=16_000)
    for packet in packets_of(speechlike(0.5), OpusEncoder()):
        decoder.decode(packet)
    tail = np.frombuffer(b"".join(decoder.conceal(320) for _ in range(25)), dtype=np.int16)
    assert signals.level_dbfs(tail[-320:]) < signals.level_dbfs(tail[:320]) - 20


def test_bad_settings_and_closed_codecs_are_refused() -> None:
    for bad in ({"bitrate": 1000}, {"complexity": 11}, {"expected_loss": 101}):
        with pytest.raises(ValueError):
            OpusSettings(**bad)  # type: ignore[arg-type]
    decoder = OpusDecoder()
    decoder.close()
    decoder.close()  # twice is fine
    with pytest.raises(OpusError):
        decoder.decode(b"\x08")
    assert decoder.samples_in(b"\x08") == 0


def test_a_corrupt_packet_raises_opus_error_not_a_crash() -> None:
    decoder = OpusDecoder()
    with pytest.raises(OpusError):
        decoder.decode(b"\xff\xff\xff")
