"""The faster audio-level function returns exactly what aiortc's own does, and aiortc uses it."""

import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aiortc import rtp
from voice_agent import aiortc_fixes

AIORTC_AUDIO_LEVEL = aiortc_fixes.AIORTC_COMPUTE_AUDIO_LEVEL_DBOV


def frame_of(samples: np.ndarray, layout: str = "mono", rate: int = 48_000) -> av.AudioFrame:
    channels = 2 if layout == "stereo" else 1
    frame = av.AudioFrame(format="s16", layout=layout, samples=len(samples) // channels)
    frame.sample_rate = rate
    frame.planes[0].update(samples.astype(np.int16).tobytes())
    return frame


@pytest.mark.parametrize("layout", ["mono", "stereo"])
@pytest.mark.parametrize("amplitude", [0, 1, 7, 300, 3000, 32767])
@pytest.mark.parametrize("samples", [320, 480, 960])
def test_the_level_matches_aiortcs_own(layout: str, amplitude: int, samples: int) -> None:
    rng = np.random.default_rng(amplitude * 1000 + samples)
    channels = 2 if layout == "stereo" else 1
    frame = frame_of(rng.integers(-amplitude, amplitude + 1, samples * channels), layout)
    assert aiortc_fixes.compute_audio_level_dbov(frame) == AIORTC_AUDIO_LEVEL(frame)


def test_the_level_matches_on_a_resampled_frame_with_a_padded_plane() -> None:
    # Frames out of PyAV's resampler carry plane padding; both versions read the whole plane.
    tone = (8000 * np.sin(np.arange(960) * 2 * np.pi * 440 / 48_000)).astype(np.int16)
    resampled = av.AudioResampler(format="s16", layout="mono", rate=16_000).resample(frame_of(tone))
    assert resampled, "the resampler produced no frame"
    for frame in resampled:
        assert aiortc_fixes.compute_audio_level_dbov(frame) == AIORTC_AUDIO_LEVEL(frame)


def test_the_original_is_aiortcs_own() -> None:
    assert AIORTC_AUDIO_LEVEL is not aiortc_fixes.compute_audio_level_dbov
    assert AIORTC_AUDIO_LEVEL.__module__ == "aiortc.rtp"


def test_install_replaces_the_function_aiortcs_sender_calls() -> None:
    assert aiortc_fixes.install() is True
    assert aiortc.rtcrtpsender.rtp is rtp
    assert rtp.compute_audio_level_dbov is aiortc_fixes.compute_audio_level_dbov
    assert aiortc_fixes.install() is True  # idempotent
