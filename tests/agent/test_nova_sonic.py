"""The nova-sonic voice against a scripted Nova Sonic at the SDK boundary (see nova_sonic_fakes)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from agent_errors import assert_reveals_nothing, logged_with_id
from aws_sdk_bedrock_runtime.models import ModelTimeoutException, ValidationException
from nova_sonic_fakes import (
    FakeBedrock,
    FakeClock,
    RecordingOutput,
    assistant_says,
    audio_output,
    content_end,
    content_start,
    text_output,
    user_says,
    wait_until,
)
from voice_agent.tools import built_in_tools, current_time_tool
from voice_agent.voices.nova_sonic import NovaSonicConfig, NovaSonicSession, NovaSonicVoice

pytestmark = pytest.mark.timeout(60)

FRAME = 640  # 20 ms of 16 kHz mono s16le


def frame(value: int) -> bytes:
    return bytes([value & 0xFF, 0]) * (FRAME // 2)


def make_session(bedrock: FakeBedrock, output: RecordingOutput, **overrides: Any) -> NovaSonicSession:
    settings: dict[str, Any] = {
        "region": "us-east-1",
        "client_factory": bedrock,
        "reconnect_backoff_seconds": 0.01,
        "close_timeout_seconds": 2.0,
        "tools": built_in_tools(),  # as create_voice gives them
    }
    settings.update(overrides)
    return NovaSonicVoice(NovaSonicConfig(**settings)).open_session(call_id="call-1", output=output)


@pytest.fixture
def bedrock() -> FakeBedrock:
    return FakeBedrock()


@pytest.fixture
def output() -> RecordingOutput:
    return RecordingOutput()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def session(
    bedrock: FakeBedrock, output: RecordingOutput, clock: FakeClock
) -> AsyncIterator[NovaSonicSession]:
    session = make_session(bedrock, output, clock=clock)
    await session.start()
    yield session
    await session.close()


def opening_of(stream: Any) -> list[dict[str, Any]]:
    """Events up to and including the audio contentStart."""
    names = stream.names()
    audio_start = next(
        i
        for i, e in enumerate(stream.sent)
        if names[i] == "contentStart" and e["event"]["contentStart"]["type"] == "AUDIO"
    )
    return stream.sent[: audio_start + 1]


# -- configuration -------------------------------------------------------------------------------


def test_config_defaults_and_normalisation() -> None:
    config = NovaSonicConfig(region="us-west-2", voice_id="Tiffany", endpointing="high")
    assert (config.model_id, config.voice_id, config.endpointing) == (
        "amazon.nova-2-sonic-v1:0",
        "tiffany",
        "HIGH",
    )
    assert NovaSonicConfig(region="us-east-1").voice_id == "matthew"
    assert NovaSonicConfig(region="us-east-1").endpointing == "MEDIUM"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"voice_id": "hal9000"}, "VOICE_AGENT_VOICE_ID"),
        ({"endpointing": "FAST"}, "VOICE_AGENT_ENDPOINTING"),
        ({"region": ""}, "AWS_REGION"),
        ({"system_prompt": "  "}, "VOICE_AGENT_SYSTEM_PROMPT"),
        ({"rotate_after_seconds": 500, "rotate_deadline_seconds": 520}, "8 minutes"),
    ],
)
def test_config_rejects_bad_settings_naming_them(overrides: dict[str, Any], message: str) -> None:
    settings = {"region": "us-east-1", **overrides}
    with pytest.raises(ValueError, match=message):
        NovaSonicConfig(**settings)


# -- the opening sequence ------------------------------------------------------------------------


async def test_opening_sequence_is_exact(session: NovaSonicSession, bedrock: FakeBedrock) -> None:
    (stream,) = bedrock.streams
    assert bedrock.regions == ["us-east-1"]
    assert stream.model_id == "amazon.nova-2-sonic-v1:0"
    opening = opening_of(stream)
    assert [next(iter(e["event"])) for e in opening] == [
        "sessionStart",
        "promptStart",
        "contentStart",
        "textInput",
        "contentEnd",
        "contentStart",
    ]
    session_start, prompt_start, system_start, system_text, system_end, audio_start = (
        next(iter(e["event"].values())) for e in opening
    )
    assert session_start["turnDetectionConfiguration"] == {"endpointingSensitivity": "MEDIUM"}
    assert set(session_start["inferenceConfiguration"]) == {"maxTokens", "topP", "temperature"}

    prompt = prompt_start["promptName"]
    assert prompt_start["audioOutputConfiguration"] == {
        "mediaType": "audio/lpcm",
        "sampleRateHertz": 24000,
        "sampleSizeBits": 16,
        "channelCount": 1,
        "voiceId": "matthew",
        "encoding": "base64",
        "audioType": "SPEECH",
    }
    assert prompt_start["textOutputConfiguration"] == {"mediaType": "text/plain"}
    assert prompt_start["toolUseOutputConfiguration"] == {"mediaType": "application/json"}
    (tool,) = prompt_start["toolConfiguration"]["tools"]
    assert tool["toolSpec"]["name"] == "get_current_time"
    assert isinstance(tool["toolSpec"]["inputSchema"]["json"], str)  # a JSON string, not an object
    assert json.loads(tool["toolSpec"]["inputSchema"]["json"])["type"] == "object"

    assert system_start == {
        "promptName": prompt,
        "contentName": system_start["contentName"],
        "type": "TEXT",
        "interactive": False,
        "role": "SYSTEM",
        "textInputConfiguration": {"mediaType": "text/plain"},
    }
    assert system_text["content"] == NovaSonicConfig(region="x").system_prompt
    assert system_text["contentName"] == system_end["contentName"] == system_start["contentName"]
    assert audio_start == {
        "promptName": prompt,
        "contentName": audio_start["contentName"],
        "type": "AUDIO",
        "interactive": True,
        "role": "USER",
        "audioInputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": 16000,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "audioType": "SPEECH",
            "encoding": "base64",
        },
    }
    assert audio_start["contentName"] != system_start["contentName"]


async def test_settings_reach_the_model(bedrock: FakeBedrock, output: RecordingOutput) -> None:
    session = make_session(
        bedrock,
        output,
        region="eu-north-1",
        voice_id="amy",
        endpointing="LOW",
        system_prompt="Be brief.",
        tools=(),
    )
    await session.start()
    try:
        (stream,) = bedrock.streams
        assert bedrock.regions == ["eu-north-1"]
        assert (
            stream.bodies("sessionStart")[0]["turnDetectionConfiguration"]["endpointingSensitivity"] == "LOW"
        )
        prompt_start = stream.bodies("promptStart")[0]
        assert prompt_start["audioOutputConfiguration"]["voiceId"] == "amy"
        assert "toolConfiguration" not in prompt_start
        assert stream.bodies("textInput")[0]["content"] == "Be brief."
    finally:
        await session.close()


# -- audio in ------------------------------------------------------------------------------------


async def test_caller_audio_goes_out_as_base64_16khz_in_order(
    session: NovaSonicSession, bedrock: FakeBedrock
) -> None:
    (stream,) = bedrock.streams
    frames = [frame(1), frame(2), frame(3)]
    for pcm in frames:
        await session.send_audio(pcm)
    audio_name = opening_of(stream)[-1]["event"]["contentStart"]["contentName"]
    bodies = [b for b in stream.bodies("audioInput") if base64.b64decode(b["content"]) != bytes(FRAME)]
    assert [base64.b64decode(b["content"]) for b in bodies] == frames
    assert all(b["contentName"] == audio_name for b in bodies)
    assert all(isinstance(b["content"], str) for b in bodies)


async def test_silence_fills_a_stalled_track(session: NovaSonicSession, bedrock: FakeBedrock) -> None:
    (stream,) = bedrock.streams
    # No audio from the caller at all: the model must still hear 20 ms frames of silence.
    await wait_until(lambda: len(stream.audio_sent()) >= 10, what="silence frames")
    assert all(pcm == bytes(FRAME) for pcm in stream.audio_sent())


async def test_no_silence_is_mixed_into_flowing_audio(bedrock: FakeBedrock, output: RecordingOutput) -> None:
    # Stall threshold far above the 20 ms frame interval, so scheduler jitter cannot trigger it.
    session = make_session(bedrock, output, silence_after_seconds=0.5)
    await session.start()
    try:
        (stream,) = bedrock.streams
        frames = [frame(10 + i) for i in range(25)]
        for pcm in frames:
            await session.send_audio(pcm)
            await asyncio.sleep(0.02)
        assert stream.audio_sent() == frames
        # Then the caller's track stalls: silence follows the real audio, never replaces it.
        await wait_until(lambda: len(stream.audio_sent()) >= len(frames) + 3, what="silence after the stall")
        assert stream.audio_sent()[: len(frames)] == frames
        assert set(stream.audio_sent()[len(frames) :]) == {bytes(FRAME)}
    finally:
        await session.close()


# -- model output --------------------------------------------------------------------------------


async def test_model_audio_is_played(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (stream,) = bedrock.streams
    speech = bytes(range(256)) * 12  # 24 kHz s16le from the model
    content_start(stream, content_id="a-audio", role="ASSISTANT", type="AUDIO")
    audio_output(stream, content_id="a-audio", pcm=speech[:1536])
    audio_output(stream, content_id="a-audio", pcm=speech[1536:])
    content_end(stream, content_id="a-audio", type="AUDIO", stop_reason="END_TURN")
    await wait_until(lambda: len(output.played) == 2, what="two audio chunks played")
    assert b"".join(output.played) == speech
    assert output.clears == 0


async def test_transcripts_are_forwarded(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (stream,) = bedrock.streams
    user_says(stream, "What's the weather like?")
    assistant_says(stream, "I can't check the weather.", content_id="a-spec", stage="SPECULATIVE")
    assistant_says(stream, "I can't check the weather, sorry.", content_id="a-final", stage="FINAL")
    await wait_until(lambda: len(output.transcripts()) == 3, what="three transcripts")
    assert output.transcripts() == [
        ("user", "What's the weather like?", True),
        ("assistant", "I can't check the weather.", False),
        ("assistant", "I can't check the weather, sorry.", True),
    ]


async def test_barge_in_text_clears_playback_at_once(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (stream,) = bedrock.streams
    content_start(stream, content_id="a-text", role="ASSISTANT", type="TEXT", stage="SPECULATIVE")
    content_start(stream, content_id="a-audio", role="ASSISTANT", type="AUDIO")
    audio_output(stream, content_id="a-audio", pcm=b"\x01\x00" * 480)
    text_output(stream, content_id="a-text", role="ASSISTANT", text='{ "interrupted" : true }')
    await wait_until(lambda: output.clears == 1, what="playback cleared")
    assert output.log == ["play", "clear"]
    # Audio the model had already queued for the interrupted answer is not played after the clear,
    # and its closing contentEnd (INTERRUPTED) does not clear a second time.
    audio_output(stream, content_id="a-audio", pcm=b"\x02\x00" * 480)
    content_end(stream, content_id="a-audio", type="AUDIO", stop_reason="INTERRUPTED")
    user_says(stream, "Stop.", content_id="u-2")
    await wait_until(lambda: len(output.transcripts()) == 1, what="the next transcript")
    assert output.log == ["play", "clear", "transcript"]
    assert ("assistant", '{ "interrupted" : true }', False) not in output.transcripts()
    # The microphone keeps streaming through the interruption.
    await session.send_audio(frame(7))
    assert frame(7) in stream.audio_sent()


async def test_barge_in_content_end_interrupted_clears_playback(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (stream,) = bedrock.streams
    content_start(stream, content_id="a-audio", role="ASSISTANT", type="AUDIO")
    audio_output(stream, content_id="a-audio", pcm=b"\x01\x00" * 480)
    content_end(stream, content_id="a-audio", type="AUDIO", stop_reason="INTERRUPTED")
    await wait_until(lambda: output.clears == 1, what="playback cleared")
    # The next answer plays again.
    content_start(stream, content_id="a-audio-2", role="ASSISTANT", type="AUDIO")
    audio_output(stream, content_id="a-audio-2", pcm=b"\x03\x00" * 480)
    await wait_until(lambda: len(output.played) == 2, what="the next answer played")
    assert output.log == ["play", "clear", "play"]


# -- tools ---------------------------------------------------------------------------------------


async def test_tool_round_trip(bedrock: FakeBedrock, output: RecordingOutput) -> None:
    fixed = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    session = make_session(bedrock, output, tools=(current_time_tool(now=lambda: fixed),))
    await session.start()
    try:
        (stream,) = bedrock.streams
        prompt = stream.bodies("promptStart")[0]["promptName"]
        content_start(stream, content_id="t-1", role="TOOL", type="TOOL")
        stream.emit(
            "toolUse",
            {
                "sessionId": "s-1",
                "promptName": "p",
                "completionId": "c-1",
                "contentId": "t-1",
                "role": "TOOL",
                "toolUseId": "tool-use-42",
                "toolName": "get_current_time",
                "content": '{"timezone": "Asia/Tokyo"}',
            },
        )
        content_end(stream, content_id="t-1", type="TOOL", stop_reason="TOOL_USE")
        await wait_until(lambda: stream.bodies("toolResult"), what="a tool result")
        names = stream.names()
        at = names.index("toolResult")
        assert names[at - 1 : at + 2] == ["contentStart", "toolResult", "contentEnd"]
        start, result, end = (next(iter(e["event"].values())) for e in stream.sent[at - 1 : at + 2])
        assert start == {
            "promptName": prompt,
            "contentName": start["contentName"],
            "interactive": False,
            "type": "TOOL",
            "role": "TOOL",
            "toolResultInputConfiguration": {
                "toolUseId": "tool-use-42",
                "type": "TEXT",
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        }
        assert result["contentName"] == end["contentName"] == start["contentName"]
        assert end["promptName"] == prompt
        answer = json.loads(result["content"])
        assert answer["timezone"] == "Asia/Tokyo"
        assert answer["iso8601"] == "2026-11-22T08:30:00+09:00"
    finally:
        await session.close()


async def test_unknown_tool_gets_an_error_result_not_a_dead_call(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (stream,) = bedrock.streams
    stream.emit(
        "toolUse", {"contentId": "t-1", "toolUseId": "t-9", "toolName": "launch_rockets", "content": "{}"}
    )
    await wait_until(lambda: stream.bodies("toolResult"), what="a tool result")
    assert "unknown tool" in json.loads(stream.bodies("toolResult")[0]["content"])["error"]
    assert not [e for e in output.events if e["type"] == "error"]


# -- rotation ------------------------------------------------------------------------------------


async def test_rotates_before_eight_minutes_replaying_history(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput, clock: FakeClock
) -> None:
    (first,) = bedrock.streams
    user_says(first, "My name is Ada.")
    assistant_says(first, "Nice to meet you, Ada.")
    await wait_until(lambda: len(output.transcripts()) == 2, what="transcripts")

    clock.now += 419.0  # 6 min 59 s: not yet
    await asyncio.sleep(0.1)
    assert len(bedrock.streams) == 1

    clock.now += 2.0  # 7 min 1 s, well before the 8-minute limit
    await wait_until(lambda: len(bedrock.streams) == 2, what="a second stream")
    second = bedrock.streams[1]
    await wait_until(lambda: "sessionEnd" in first.names(), what="the first stream closed")

    opening = opening_of(second)
    names = [next(iter(e["event"])) for e in opening]
    assert names == ["sessionStart", "promptStart"] + ["contentStart", "textInput", "contentEnd"] * 3 + [
        "contentStart"
    ]
    history = [
        (opening[i]["event"]["contentStart"]["role"], opening[i + 1]["event"]["textInput"]["content"])
        for i in (5, 8)
    ]
    assert history == [("USER", "My name is Ada."), ("ASSISTANT", "Nice to meet you, Ada.")]
    assert all(opening[i]["event"]["contentStart"]["interactive"] is False for i in (5, 8))

    # The call goes on: audio now reaches the new stream, the old one ended cleanly.
    await session.send_audio(frame(9))
    assert frame(9) in second.audio_sent()
    assert frame(9) not in first.audio_sent()
    assert first.names()[-3:] == ["contentEnd", "promptEnd", "sessionEnd"]
    assert not [e for e in output.events if e["type"] == "error"]


async def test_rotation_waits_for_the_assistant_to_finish_speaking(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput, clock: FakeClock
) -> None:
    (first,) = bedrock.streams
    content_start(first, content_id="a-audio", role="ASSISTANT", type="AUDIO")
    audio_output(first, content_id="a-audio", pcm=b"\x01\x00" * 480)
    await wait_until(lambda: output.played, what="the assistant speaking")
    clock.now += 425.0
    await asyncio.sleep(0.2)
    assert len(bedrock.streams) == 1, "rotated mid-sentence although there was time to wait"

    content_end(first, content_id="a-audio", type="AUDIO", stop_reason="END_TURN")
    await wait_until(lambda: len(bedrock.streams) == 2, what="rotation once the assistant is quiet")


async def test_rotation_is_forced_at_the_deadline(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput, clock: FakeClock
) -> None:
    (first,) = bedrock.streams
    content_start(first, content_id="a-audio", role="ASSISTANT", type="AUDIO")
    audio_output(first, content_id="a-audio", pcm=b"\x01\x00" * 480)
    await wait_until(lambda: output.played, what="the assistant speaking")
    clock.now += 451.0  # past the deadline: rotate even though the assistant is still speaking
    await wait_until(lambda: len(bedrock.streams) == 2, what="forced rotation")
    # The old stream may finish its sentence while draining: its audio is still played.
    audio_output(first, content_id="a-audio", pcm=b"\x02\x00" * 480)
    await wait_until(lambda: len(output.played) == 2, what="the rest of the sentence")


# -- failures ------------------------------------------------------------------------------------


async def test_reconnects_with_history_after_a_stream_error(
    session: NovaSonicSession, bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    (first,) = bedrock.streams
    user_says(first, "Remember the number 7.")
    assistant_says(first, "Got it: 7.")
    await wait_until(lambda: len(output.transcripts()) == 2, what="transcripts")

    first.fail(ModelTimeoutException("Timed out waiting for audio bytes (InternalErrorCode=531)"))
    await wait_until(lambda: len(bedrock.streams) == 2, what="a replacement stream")
    second = bedrock.streams[1]
    await wait_until(lambda: second.names()[-1:] == ["contentStart"], what="the replacement's opening")
    texts = [b["content"] for b in second.bodies("textInput")]
    assert texts[1:] == ["Remember the number 7.", "Got it: 7."]

    await session.send_audio(frame(5))
    assert frame(5) in second.audio_sent()
    assert frame(5) not in first.audio_sent()
    # A failed stream gets no closing events (it is gone), but it is closed.
    assert "sessionEnd" not in first.names()
    await wait_until(lambda: first.input_stream.closed, what="the failed stream closed")
    assert not [e for e in output.events if e["type"] == "error"]

    # The replacement works like the first.
    user_says(second, "What was the number?", content_id="u-2")
    await wait_until(lambda: len(output.transcripts()) == 3, what="a transcript from the new stream")


async def test_audio_during_reconnect_is_delivered_to_the_new_stream(
    bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    session = make_session(bedrock, output, reconnect_backoff_seconds=0.3)
    await session.start()
    try:
        (first,) = bedrock.streams
        first.fail(ValidationException("stream error"))
        await wait_until(lambda: first.input_stream.closed, what="the failed stream dropped")
        await session.send_audio(frame(3))  # while no stream is open
        await wait_until(lambda: len(bedrock.streams) == 2, what="a replacement stream")
        second = bedrock.streams[1]
        await wait_until(lambda: frame(3) in second.audio_sent(), what="buffered audio flushed")
    finally:
        await session.close()


async def test_gives_up_after_bounded_reconnects_and_tells_the_browser(
    bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    session = make_session(bedrock, output, max_reconnects=2)
    await session.start()
    try:
        (first,) = bedrock.streams
        bedrock.refuse_opens = 100
        first.end()  # the model hangs up unexpectedly
        await wait_until(lambda: any(e["type"] == "error" for e in output.events), what="an error event")
        (error,) = [e for e in output.events if e["type"] == "error"]
        assert error["code"] == "voice_unavailable"
        assert error["message"]
        assert len(bedrock.regions) == 1 + 2  # the first open and exactly two retries
        await session.send_audio(frame(1))  # a dead voice ignores audio instead of raising
    finally:
        await session.close()


async def test_the_give_up_event_has_an_id_and_only_the_log_has_what_failed(
    bedrock: FakeBedrock, output: RecordingOutput, caplog: pytest.LogCaptureFixture
) -> None:
    session = make_session(bedrock, output, max_reconnects=0)
    await session.start()
    denied = "User: arn:aws:sts::123456789012:assumed-role/voice-agent/s is not authorized"
    try:
        bedrock.streams[0].fail(ValidationException(denied))
        await wait_until(lambda: any(e["type"] == "error" for e in output.events), what="an error event")
    finally:
        await session.close()
    (error,) = [e for e in output.events if e["type"] == "error"]
    assert_reveals_nothing(json.dumps(error))
    detail = logged_with_id(caplog, error["id"]).detail
    assert "ValidationException" in detail and denied in detail


async def test_start_raises_when_the_stream_cannot_open(
    bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    bedrock.refuse_opens = 1
    session = make_session(bedrock, output)
    with pytest.raises(OSError, match="refused"):
        await session.start()
    await session.close()


# -- closing -------------------------------------------------------------------------------------


async def test_close_sends_the_closing_sequence(bedrock: FakeBedrock, output: RecordingOutput) -> None:
    session = make_session(bedrock, output)
    await session.start()
    (stream,) = bedrock.streams
    await session.send_audio(frame(1))
    await session.close()
    prompt = stream.bodies("promptStart")[0]["promptName"]
    audio_name = opening_of(stream)[-1]["event"]["contentStart"]["contentName"]
    assert stream.sent[-3:] == [
        {"event": {"contentEnd": {"promptName": prompt, "contentName": audio_name}}},
        {"event": {"promptEnd": {"promptName": prompt}}},
        {"event": {"sessionEnd": {}}},
    ]
    assert stream.input_stream.closed and stream.receiver.closed
    assert bedrock.clients[0].closed
    sent = len(stream.sent)
    await session.close()  # safe twice
    await session.send_audio(frame(2))  # and audio after close is ignored
    await asyncio.sleep(0.1)
    assert len(stream.sent) == sent


async def test_close_is_bounded_when_the_sdk_close_hangs(
    bedrock: FakeBedrock, output: RecordingOutput
) -> None:
    session = make_session(bedrock, output, close_timeout_seconds=0.2)
    await session.start()
    (stream,) = bedrock.streams
    stream.hang_on_close = True
    async with asyncio.timeout(5):
        await session.close()
    assert stream.names()[-1] == "sessionEnd"
    assert bedrock.clients[0].closed
