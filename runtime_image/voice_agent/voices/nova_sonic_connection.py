"""One Nova Sonic stream as a session runs it: the events that open and close it, the caller's audio and
tool results sent on it, and what the session knows of it (its mode, its turns, its tasks)."""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from . import nova_sonic_events as events
from .nova_sonic_client import ClientFactory, ModelStream
from .nova_sonic_config import NovaSonicConfig
from .nova_sonic_history import HistoryMessage
from .nova_sonic_options import NovaSonicOptions
from .nova_sonic_turns import Log, TurnTracker

logger = logging.getLogger(__name__)


class Mode(enum.Enum):
    ACTIVE = "active"  # receives the caller's audio; its output is played
    DRAINING = "draining"  # rotated out: its output is still played until it ends
    DEAD = "dead"  # failed or closed: its output is ignored


class Connection:
    def __init__(
        self,
        *,
        number: int,
        stream: ModelStream,
        opened_at: float,
        turns: TurnTracker,
        log: Log,
    ) -> None:
        self.number = number
        self.stream = stream
        self.opened_at = opened_at
        self.turns = turns
        self.prompt_name = str(uuid.uuid4())
        self.audio_content_name = str(uuid.uuid4())
        self.mode = Mode.ACTIVE
        self.tools_running = 0
        self.receiver: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self._log = log

    @classmethod
    async def open(
        cls,
        factory: ClientFactory,
        config: NovaSonicConfig,
        *,
        number: int,
        call_id: str,
        turns: TurnTracker,
        log: Log,
    ) -> Connection:
        """A client and its model stream, each bounded by the open timeout; nothing is sent yet."""
        async with asyncio.timeout(config.open_timeout_seconds):
            client = await factory(config.region)
        try:
            async with asyncio.timeout(config.open_timeout_seconds):
                stream = await ModelStream.open(
                    client=client,
                    model_id=config.model_id,
                    call_id=call_id,
                    send_timeout_seconds=config.send_timeout_seconds,
                )
        except BaseException:
            await _close_quietly(client, bound_seconds=config.close_timeout_seconds)
            raise
        return cls(number=number, stream=stream, opened_at=config.clock(), turns=turns, log=log)

    @property
    def quiet(self) -> bool:
        """Neither speaking nor waiting for a tool: a moment to move the call to another stream."""
        return not self.turns.assistant_speaking and self.tools_running == 0

    async def send_opening(
        self,
        options: NovaSonicOptions,
        *,
        tool_configuration: dict[str, Any] | None,
        history: Sequence[HistoryMessage],
    ) -> None:
        """Session, prompt, system prompt, the conversation so far, then the caller's audio block."""
        prompt = self.prompt_name
        opening = [
            events.session_start(endpointing=options.endpointing),
            events.prompt_start(
                prompt_name=prompt, voice_id=options.voice_id, tool_configuration=tool_configuration
            ),
            *events.text_block(
                prompt_name=prompt, content_name=str(uuid.uuid4()), role="SYSTEM", text=options.system_prompt
            ),
        ]
        for message in history:
            opening += events.text_block(
                prompt_name=prompt, content_name=str(uuid.uuid4()), role=message.role, text=message.text
            )
        opening.append(events.audio_content_start(prompt_name=prompt, content_name=self.audio_content_name))
        await self.stream.send(*opening)

    async def send_audio(self, pcm: bytes) -> None:
        await self.stream.send(
            events.audio_input(prompt_name=self.prompt_name, content_name=self.audio_content_name, pcm=pcm)
        )

    async def send_tool_result(self, tool_use_id: str, result: dict[str, Any]) -> None:
        await self.stream.send(
            *events.tool_result_block(
                prompt_name=self.prompt_name,
                content_name=str(uuid.uuid4()),
                tool_use_id=tool_use_id,
                result=result,
            )
        )

    async def close(self, *, graceful: bool, drain_seconds: float, budget_seconds: float) -> None:
        """End the stream within ``budget_seconds`` (plus ``drain_seconds``, to finish a sentence).

        Graceful: the closing events first (a third of the budget); then the SDK's close (the rest).
        """
        if graceful:
            closing = [
                events.content_end(prompt_name=self.prompt_name, content_name=self.audio_content_name),
                events.prompt_end(prompt_name=self.prompt_name),
                events.session_end(),
            ]
            try:
                async with asyncio.timeout(budget_seconds / 3):
                    await self.stream.send(*closing)
            except Exception as error:
                self._log.debug("closing events to stream %d not sent: %r", self.number, error)
        receiver = self.receiver
        if receiver is not None and drain_seconds > 0:
            # Let a rotated-out stream finish the sentence it was speaking.
            await asyncio.wait({receiver}, timeout=drain_seconds)
        self.mode = Mode.DEAD
        await self.stream.close(bound_seconds=budget_seconds * 2 / 3)
        if receiver is not None and not receiver.done():
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)


async def _close_quietly(client: Any, *, bound_seconds: float) -> None:
    try:
        async with asyncio.timeout(bound_seconds):
            await client.close()
    except Exception as error:
        logger.debug("client close failed: %r", error)
