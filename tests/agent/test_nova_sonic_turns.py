"""The turns of one Nova Sonic stream, event by event, with no event loop: what is played and reported,
what the history keeps, barge-in, and when the assistant is speaking."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from nova_sonic_fakes import (
    RecordingOutput,
    assistant_says,
    audio_output,
    content_end,
    content_start,
    text_output,
    user_says,
)
from voice_agent.voices.nova_sonic_events import parse_output
from voice_agent.voices.nova_sonic_history import ConversationHistory
from voice_agent.voices.nova_sonic_turns import ToolRequest, TurnTracker


class Feed:
    """Stands where the model stream is for the fakes' event builders: each event goes to the tracker."""

    def __init__(self) -> None:
        self.output = RecordingOutput()
        self.history = ConversationHistory()
        self.tracker = TurnTracker(
            output=self.output, history=self.history, log=logging.getLogger("test_nova_sonic_turns")
        )
        self.requests: list[ToolRequest] = []

    def emit(self, name: str, body: dict[str, Any]) -> None:
        event = parse_output(json.dumps({"event": {name: body}}).encode())
        if request := self.tracker.handle(event):
            self.requests.append(request)

    def history_texts(self) -> list[tuple[str, str]]:
        return [(m.role, m.text) for m in self.history.messages()]


@pytest.fixture
def feed() -> Feed:
    return Feed()


def test_the_assistants_audio_is_played_in_order(feed: Feed) -> None:
    content_start(feed, content_id="a", role="ASSISTANT", type="AUDIO")
    audio_output(feed, content_id="a", pcm=b"\x01\x00" * 10)
    audio_output(feed, content_id="a", pcm=b"\x02\x00" * 10)
    assert feed.output.played == [b"\x01\x00" * 10, b"\x02\x00" * 10]


def test_the_assistant_speaks_from_its_audio_block_to_that_blocks_end(feed: Feed) -> None:
    assert not feed.tracker.assistant_speaking
    content_start(feed, content_id="a", role="ASSISTANT", type="AUDIO")
    assert feed.tracker.assistant_speaking
    content_end(feed, content_id="a", type="AUDIO", stop_reason="END_TURN")
    assert not feed.tracker.assistant_speaking


def test_the_users_final_words_are_a_final_transcript_and_history(feed: Feed) -> None:
    user_says(feed, "My name is Ada.")
    assert feed.output.transcripts() == [("user", "My name is Ada.", True)]
    assert feed.history_texts() == [("USER", "My name is Ada.")]


def test_a_speculative_answer_is_shown_and_only_the_final_one_is_kept(feed: Feed) -> None:
    user_says(feed, "Hello?")
    assistant_says(feed, "Hi.", content_id="a-1", stage="SPECULATIVE")
    assistant_says(feed, "Hi there.", content_id="a-2", stage="FINAL")
    assert feed.output.transcripts()[1:] == [("assistant", "Hi.", False), ("assistant", "Hi there.", True)]
    assert feed.history_texts() == [("USER", "Hello?"), ("ASSISTANT", "Hi there.")]


def test_empty_text_is_neither_shown_nor_kept(feed: Feed) -> None:
    user_says(feed, "   ")
    assert feed.output.events == [] and len(feed.history) == 0


def test_barge_in_clears_once_and_drops_the_interrupted_answers_audio(feed: Feed) -> None:
    content_start(feed, content_id="t", role="ASSISTANT", type="TEXT", stage="SPECULATIVE")
    content_start(feed, content_id="a", role="ASSISTANT", type="AUDIO")
    audio_output(feed, content_id="a", pcm=b"\x01\x00")
    text_output(feed, content_id="t", role="ASSISTANT", text='{ "interrupted" : true }')
    audio_output(feed, content_id="a", pcm=b"\x02\x00")
    content_end(feed, content_id="a", type="AUDIO", stop_reason="INTERRUPTED")
    assert feed.output.log == ["play", "clear"]  # no transcript of the signal, no second clear
    assert not feed.tracker.assistant_speaking


def test_an_interrupted_content_end_alone_is_a_barge_in(feed: Feed) -> None:
    content_start(feed, content_id="a", role="ASSISTANT", type="AUDIO")
    content_end(feed, content_id="a", type="AUDIO", stop_reason="INTERRUPTED")
    assert feed.output.clears == 1


def test_the_next_answer_plays_after_a_barge_in(feed: Feed) -> None:
    content_start(feed, content_id="a", role="ASSISTANT", type="AUDIO")
    content_end(feed, content_id="a", type="AUDIO", stop_reason="INTERRUPTED")
    content_start(feed, content_id="b", role="ASSISTANT", type="AUDIO")
    audio_output(feed, content_id="b", pcm=b"\x03\x00")
    assert feed.output.log == ["clear", "play"]


def test_a_tool_use_comes_back_as_a_request(feed: Feed) -> None:
    feed.emit("toolUse", {"toolUseId": "t-1", "toolName": "get_current_time", "content": "{}"})
    assert feed.requests == [ToolRequest(name="get_current_time", tool_use_id="t-1", content="{}")]
    assert feed.output.log == []


def test_other_events_change_nothing(feed: Feed) -> None:
    feed.emit("usageEvent", {"totalTokens": 12})
    feed.emit("completionEnd", {"stopReason": "END_TURN"})
    assert (feed.output.log, feed.requests, feed.tracker.assistant_speaking) == ([], [], False)
