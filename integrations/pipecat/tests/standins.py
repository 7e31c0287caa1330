"""Text-in/text-out stand-ins for a voice pipeline's STT, LLM and TTS.

They are real Pipecat FrameProcessors and run in a real PipelineWorker, so
frames travel, queue and get interrupted as they do in a bot; only speech is
replaced by text.
"""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.time import time_now_iso8601


class CallerSTT(FrameProcessor):
    """Stand-in STT: the test makes the caller speak with :meth:`hear`."""

    async def hear(self, text: str) -> None:
        """The caller said ``text``: a final transcription goes downstream."""
        await self.push_frame(TranscriptionFrame(text, user_id="caller", timestamp=time_now_iso8601()))

    async def hear_interim(self, text: str) -> None:
        """A partial transcription, as STT services send while the caller talks."""
        await self.push_frame(
            InterimTranscriptionFrame(text, user_id="caller", timestamp=time_now_iso8601())
        )

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class AgentLLM(FrameProcessor):
    """Stand-in for the user context aggregator and the LLM.

    Records every transcription it gets and answers each with a TextFrame;
    records the system notes appended to its context. Like the real user
    aggregator, it starts interruptions with ``broadcast_interruption``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.transcripts: list[str] = []
        self.interims: list[str] = []
        self.notes: list[str] = []
        self.replies: list[str] = []

    async def barge_in(self) -> None:
        """The caller started talking over the bot."""
        await self.broadcast_interruption()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.transcripts.append(frame.text)
            reply = f"Agent reply {len(self.transcripts)}."
            self.replies.append(reply)
            await self.push_frame(TextFrame(reply))
        elif isinstance(frame, InterimTranscriptionFrame):
            self.interims.append(frame.text)
        elif isinstance(frame, LLMMessagesAppendFrame):
            self.notes.extend(str(m.get("content")) for m in frame.messages)
        else:
            await self.push_frame(frame, direction)


class SpeakerTTS(FrameProcessor):
    """Stand-in TTS and output transport: text is "spoken" by waiting a little.

    Emits TTSStarted/TTSStopped downstream and Bot{Started,Stopped}SpeakingFrame
    both ways, as Pipecat's TTS service and output transport do, so the
    callbook processor upstream can tell when a say finished playing.
    ``spoken`` holds what was played to the end, ``cut`` what was interrupted.
    ``hold_next`` makes the next utterance play until it is interrupted.
    """

    def __init__(self, play_seconds: float = 0.05) -> None:
        super().__init__()
        self.play_seconds = play_seconds
        self.hold_next = False
        self.spoken: list[str] = []
        self.cut: list[str] = []
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._speaking: str | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSSpeakFrame) or (
            isinstance(frame, TextFrame) and not isinstance(frame, TranscriptionFrame)
        ):
            await self._speak(frame.text)
        elif isinstance(frame, InterruptionFrame):
            # super() already cancelled the utterance being played.
            if self._speaking is not None:
                self.cut.append(self._speaking)
                self.events.put_nowait(("cut", self._speaking))
                self._speaking = None
                await self.broadcast_frame(BotStoppedSpeakingFrame)
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _speak(self, text: str) -> None:
        hold, self.hold_next = self.hold_next, False
        await self.push_frame(TTSStartedFrame())
        self._speaking = text
        await self.broadcast_frame(BotStartedSpeakingFrame)
        self.events.put_nowait(("started", text))
        if hold:
            await asyncio.Event().wait()  # until an interruption cancels it
        await asyncio.sleep(self.play_seconds)
        self._speaking = None
        self.spoken.append(text)
        await self.push_frame(TTSStoppedFrame())
        await self.broadcast_frame(BotStoppedSpeakingFrame)
        self.events.put_nowait(("finished", text))
