"""The Pipecat processor that joins a call to callbook.

One :class:`CallbookProcessor` per call, placed between speech-to-text and the
LLM's user context aggregator. It opens callbook's call WebSocket when the
pipeline starts and speaks callbook's protocol (1.2) on the pipeline's behalf:

* every final transcription goes to callbook first; callbook's ``turn`` answer
  decides whether the LLM sees it (``owner: "agent"``) or not
  (``owner: "callbook"``). No answer in time, or no callbook at all, means the
  agent answers: the processor fails open;
* callbook's ``say`` frames are spoken through the pipeline's TTS, and their
  playback is reported back (``mark`` when a say was heard to the end,
  ``clear`` when the caller barged in);
* ``booking`` status changes become short system notes in the LLM's context.

Nothing here logs what the caller said, what callbook said (a read-back spells
the caller's email), an email or a phone number.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

#: The protocol version this processor implements.
PROTOCOL_VERSION = "1.2.0"

_MAX_TRANSCRIPT_BYTES = 4096
AGENT = "agent"
CALLBOOK = "callbook"


@dataclass
class _PendingSay:
    """A say pushed to TTS whose playback has not been reported yet."""

    id: str
    #: The bot speech segment (counted by BotStartedSpeakingFrame) expected to carry it.
    segment: int


def booking_note(booking: dict[str, Any]) -> str | None:
    """The system note the LLM gets for a booking status, or None for no note.

    Notes carry times and event ids, never the caller's email.
    """
    status = booking.get("status")
    if status == "offered":
        return (
            "callbook is now running the meeting booking with the caller. Stay silent "
            "until it reports the booking finished."
        )
    if status == "declined":
        return "The caller declined the meeting. The conversation is yours again."
    if status == "booked":
        link = " with a video link" if booking.get("join_link") else ""
        return (
            f"Meeting booked for {_when(booking.get('start'))}{link} "
            f"(event {booking.get('event_id')}). The invite is on its way to the caller. "
            "The conversation is yours again."
        )
    if status == "rescheduled":
        return (
            f"The meeting moved from {_when(booking.get('previous_start'))} to "
            f"{_when(booking.get('start'))} (event {booking.get('event_id')})."
        )
    if status == "cancelled":
        return f"The caller cancelled the meeting of {_when(booking.get('start'))}."
    if status in ("failed", "skipped"):
        return (
            f"No meeting was booked ({status}: {booking.get('reason')}). "
            "The conversation is yours again."
        )
    if status == "done" and booking.get("reason") == "handed_back":
        return "The booking conversation was stopped; the conversation is yours again."
    return None


def _when(instant: Any) -> str:
    """``2026-12-01T19:00:00Z`` as ``2026-12-01 19:00 UTC``."""
    if not isinstance(instant, str) or "T" not in instant:
        return str(instant)
    day, clock = instant.split("T", 1)
    return f"{day} {clock[:5]} UTC"


def _version_tuple(version: Any) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(version).split("."))
    except ValueError:
        return ()


class CallbookProcessor(FrameProcessor):
    """Runs callbook's booking conversation inside a Pipecat pipeline.

    Place it right after STT, before the LLM user context aggregator::

        Pipeline([transport.input(), stt, callbook, user_aggregator, llm, tts,
                  transport.output(), assistant_aggregator])

    Events (``@callbook.event_handler(name)``), each called with the processor:

    * ``on_booking(processor, booking)``: every ``booking`` status frame body;
    * ``on_say(processor, say)``: every ``say`` (``{"id", "text"}``) before it is spoken;
    * ``on_turn(processor, turn)``: every ``turn`` answer (``{"id", "owner", "floor"}``);
    * ``on_closed(processor, code, reason)``: callbook's socket closed.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str,
        campaign_id: str,
        recipient_phone: str | None = None,
        recipient_first_name: str | None = None,
        recipient_last_name: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        account_sid: str = "AC00000000000000000000000000000000",
        custom_parameters: dict[str, Any] | None = None,
        turn_timeout: float = 1.0,
        connect_timeout: float = 5.0,
        close_timeout: float = 2.0,
        say_in_context: bool = False,
        booking_notes: bool = True,
        **kwargs: Any,
    ) -> None:
        """Create the processor for one call.

        Args:
            url: callbook's call endpoint, e.g. ``ws://127.0.0.1:8080/v1/calls``.
            token: the bearer token callbook was started with (``--auth-token``).
            campaign_id: the campaign whose booking rules and calendar apply.
            recipient_phone: the caller's number (E.164 or national), used for
                their time zone.
            recipient_first_name: the caller's first name, for the invite.
            recipient_last_name: the caller's last name, for the invite.
            call_sid: the call's id (Twilio's ``CallSid``); a fresh one if None.
                The same id on a new socket resumes the call.
            stream_sid: the stream's id; a fresh one if None.
            account_sid: Twilio's ``AccountSid``, passed through.
            custom_parameters: more ``start.customParameters`` (callbook ignores
                the ones it does not know).
            turn_timeout: seconds a final transcription waits for callbook's
                ``turn`` answer before the agent gets it anyway.
            connect_timeout: seconds to open the socket; after that the call
                runs without callbook.
            close_timeout: seconds to let callbook finish after ``stop``.
            say_in_context: whether callbook's says are added to the LLM
                context as assistant messages (``TTSSpeakFrame.append_to_context``).
            booking_notes: whether booking statuses become system notes in the
                LLM context.
            **kwargs: passed to :class:`FrameProcessor`.
        """
        super().__init__(**kwargs)
        self._url = url
        self._token = token
        self._call_sid = call_sid or "CA" + uuid.uuid4().hex
        self._stream_sid = stream_sid or "MZ" + uuid.uuid4().hex
        self._account_sid = account_sid
        params: dict[str, Any] = {
            "campaign_id": campaign_id,
            "recipient_phone": recipient_phone,
            "recipient_first_name": recipient_first_name,
            "recipient_last_name": recipient_last_name,
            **(custom_parameters or {}),
            "callbook_playback": "marks",
        }
        self._custom_parameters = {k: v for k, v in params.items() if v is not None}
        self._turn_timeout = turn_timeout
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._say_in_context = say_in_context
        self._booking_notes = booking_notes

        self._ws: ClientConnection | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set once connected (or given up)
        self._closed = False
        self._stopping = False
        self._turns_supported = False
        self._server_version: str | None = None
        self._send_lock = asyncio.Lock()
        self._sequence = itertools.count(1)
        self._transcript_ids = itertools.count(1)
        self._turn_waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._late_turns: set[str] = set()
        self._sync_ids = itertools.count(1)
        self._sync_waiters: dict[str, asyncio.Future[bool]] = {}

        # Playback: says pushed to TTS and not yet marked, in order.
        self._pending_says: deque[_PendingSay] = deque()
        self._segments = 0  # bot speech segments seen (BotStartedSpeakingFrame)
        self._bot_speaking = False
        self._last_mark: str | None = None

        for event in ("on_booking", "on_say", "on_turn", "on_closed"):
            self._register_event_handler(event)

    # ----------------------------------------------------------------- public

    @property
    def call_sid(self) -> str:
        """The call's id, as sent in ``start``."""
        return self._call_sid

    @property
    def stream_sid(self) -> str:
        """The stream's id, as sent in ``start``."""
        return self._stream_sid

    @property
    def connected(self) -> bool:
        """Whether callbook's socket is open."""
        return self._ws is not None and not self._closed

    @property
    def server_version(self) -> str | None:
        """The protocol version callbook announced, once connected."""
        return self._server_version

    @property
    def last_mark(self) -> str | None:
        """The say id of the last ``mark`` sent to callbook."""
        return self._last_mark

    async def offer(
        self, agreed: bool = False, email: str | None = None, when: str | None = None
    ) -> bool:
        """Tell callbook the conversation reached the point where a meeting makes sense.

        Args:
            agreed: the caller already said yes to a meeting (callbook goes on to
                the email).
            email: an address the agent already has (callbook reads it back).
            when: the caller's preferred time, as they said it.

        Returns:
            Whether the frame was sent.
        """
        booking: dict[str, Any] = {"action": "offer"}
        if agreed:
            booking["agreed"] = True
        if email:
            booking["email"] = email
        if when:
            booking["when"] = when
        return await self._send_when_ready({"event": "booking", "booking": booking})

    async def hand_back(self) -> bool:
        """Take the floor back: callbook stops its booking conversation.

        A meeting already booked stays booked. Returns whether the frame was sent.
        """
        return await self._send_when_ready(
            {"event": "booking", "booking": {"action": "cancel"}}
        )

    async def sync(self, timeout: float = 5.0) -> bool:
        """Wait until callbook has handled everything sent before, calendar work included.

        Its replies to those frames have then been received. Returns False on
        timeout or without a connection.
        """
        sync_id = f"sync{next(self._sync_ids)}"
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._sync_waiters[sync_id] = waiter
        try:
            if not await self._send_when_ready({"event": "sync", "sync": {"id": sync_id}}):
                return False
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        finally:
            self._sync_waiters.pop(sync_id, None)

    # ------------------------------------------------------------- pipeline

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Route the pipeline's frames (see the class docs)."""
        await super().process_frame(frame, direction)

        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._run_task is None:
                self._run_task = self.create_task(self._run(), "callbook")
        elif isinstance(frame, TranscriptionFrame) and direction == FrameDirection.DOWNSTREAM:
            if await self._owner_of(frame) == AGENT:
                await self.push_frame(frame, direction)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._segments += 1
            self._bot_speaking = True
            await self.push_frame(frame, direction)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            await self._report_played()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            await self._report_cut()
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            await self._stop(self._close_timeout)
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._stop(min(self._close_timeout, 0.5))
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Close callbook's socket if the pipeline ends without End/Cancel."""
        await super().cleanup()  # type: ignore[no-untyped-call]
        await self._shutdown()

    # ---------------------------------------------------------------- turns

    async def _owner_of(self, frame: TranscriptionFrame) -> str:
        """Send a final transcription to callbook and wait for who answers it."""
        text = frame.text.strip()
        if not text:
            return AGENT
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._turn_timeout
        # A barge-in while this waits must not drop the transcription.
        interruptible = frame.interruptible
        frame.interruptible = False
        try:
            try:
                await asyncio.wait_for(self._ready.wait(), self._turn_timeout)
            except TimeoutError:
                logger.warning(f"{self}: callbook not connected yet; the agent answers")
                return AGENT
            if self._closed:
                return AGENT
            transcript_id = f"t{next(self._transcript_ids)}"
            waiter: asyncio.Future[dict[str, Any]] = loop.create_future()
            if self._turns_supported:
                self._turn_waiters[transcript_id] = waiter
            body = {"id": transcript_id, "text": _clip(text), "final": True}
            if not await self._send({"event": "transcript", "transcript": body}):
                self._turn_waiters.pop(transcript_id, None)
                return AGENT
            if not self._turns_supported:
                return AGENT
            try:
                turn = await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                self._late_turns.add(transcript_id)
                logger.warning(
                    f"{self}: no turn answer for {transcript_id} within "
                    f"{self._turn_timeout}s; the agent answers"
                )
                return AGENT
            finally:
                self._turn_waiters.pop(transcript_id, None)
            return CALLBOOK if turn.get("owner") == CALLBOOK else AGENT
        finally:
            frame.interruptible = interruptible

    def _answer_turn(self, turn: dict[str, Any]) -> None:
        """Hand a ``turn`` frame to the transcription waiting for it."""
        turn_id = turn.get("id")
        if turn_id is None and self._turn_waiters:
            turn_id = next(iter(self._turn_waiters))  # answers come in order
        turn_id = None if turn_id is None else str(turn_id)
        waiter = self._turn_waiters.pop(turn_id, None) if turn_id is not None else None
        if waiter is not None and not waiter.done():
            waiter.set_result(turn)
        elif turn_id in self._late_turns:
            self._late_turns.discard(turn_id)
            if turn.get("owner") == CALLBOOK:
                logger.warning(f"{self}: callbook took {turn_id} after the agent got it")

    # ------------------------------------------------------------- playback

    async def _say(self, say: dict[str, Any]) -> None:
        """Speak one ``say`` through the pipeline's TTS."""
        say_id, text = str(say.get("id")), str(say.get("text") or "")
        await self._call_event_handler("on_say", say)
        if not text.strip():
            await self._send_mark(say_id)
            return
        last = self._pending_says[-1].segment if self._pending_says else 0
        self._pending_says.append(_PendingSay(say_id, max(self._segments + 1, last + 1)))
        logger.debug(f"{self}: speaking {say_id} ({len(text)} chars)")
        await self.push_frame(TTSSpeakFrame(text, append_to_context=self._say_in_context))

    async def _report_played(self) -> None:
        """The bot stopped speaking: mark the says whose audio has now played."""
        played = None
        while self._pending_says and self._pending_says[0].segment <= self._segments:
            played = self._pending_says.popleft().id
        if played is not None:
            await self._send_mark(played)  # a mark covers every earlier say

    async def _send_mark(self, say_id: str) -> None:
        self._last_mark = say_id
        await self._send(
            {
                "event": "mark",
                "sequenceNumber": str(next(self._sequence)),
                "streamSid": self._stream_sid,
                "mark": {"name": say_id},
            }
        )

    async def _report_cut(self) -> None:
        """The caller barged in: every say not yet marked was cut."""
        if not self._pending_says:
            return
        head = self._pending_says[0]
        in_progress = self._bot_speaking and head.segment <= self._segments
        self._pending_says.clear()
        frame: dict[str, Any] = {"event": "clear", "streamSid": self._stream_sid}
        if in_progress:
            frame["clear"] = {"say": head.id}
        logger.debug(f"{self}: barge-in, clearing from {head.id}")
        await self._send(frame)

    # ------------------------------------------------------------- bookings

    async def _booking(self, booking: dict[str, Any]) -> None:
        status = booking.get("status")
        logger.info(f"{self}: booking {status}")
        await self._call_event_handler("on_booking", booking)
        note = booking_note(booking) if self._booking_notes else None
        if note:
            await self.push_frame(
                LLMMessagesAppendFrame([{"role": "system", "content": note}], run_llm=False)
            )

    # ----------------------------------------------------------- connection

    async def _run(self) -> None:
        """Connect, announce the call, then read callbook's frames until it closes."""
        try:
            self._ws = await connect(
                self._url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                open_timeout=self._connect_timeout,
                max_size=2**20,
            )
        except (OSError, TimeoutError, WebSocketException) as e:
            logger.warning(f"{self}: cannot reach callbook ({type(e).__name__}); no booking")
            self._closed = True
            self._ready.set()
            return
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": str(next(self._sequence)),
                "streamSid": self._stream_sid,
                "start": {
                    "accountSid": self._account_sid,
                    "streamSid": self._stream_sid,
                    "callSid": self._call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": self._custom_parameters,
                },
            }
        )
        await self._send({"event": "capabilities", "capabilities": {"playback": "marks"}})
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    await self._dispatch(message)
        except ConnectionClosed:
            pass
        finally:
            await self._closed_by_peer()

    async def _dispatch(self, message: str) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            logger.warning(f"{self}: callbook sent a frame that is not JSON")
            return
        if not isinstance(frame, dict):
            return
        event = frame.get("event")
        if event == "connected":
            self._server_version = str(frame.get("version"))
            self._turns_supported = _version_tuple(self._server_version) >= (1, 2)
            if not self._turns_supported:
                logger.warning(
                    f"{self}: callbook speaks {self._server_version}, without turns; "
                    "the agent answers every transcript"
                )
            self._ready.set()
        elif event == "turn":
            turn = frame.get("turn") or {}
            await self._call_event_handler("on_turn", turn)
            self._answer_turn(turn)
        elif event == "say":
            await self._say(frame.get("say") or {})
        elif event == "booking":
            await self._booking(frame.get("booking") or {})
        elif event == "sync":
            waiter = self._sync_waiters.get(str((frame.get("sync") or {}).get("id")))
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        elif event == "error":
            code = (frame.get("error") or {}).get("code")
            logger.warning(f"{self}: callbook refused a frame ({code})")
        # resumed and unknown events need nothing here.

    async def _closed_by_peer(self) -> None:
        """The socket closed: everything waiting goes to the agent from now on."""
        self._closed = True
        self._ready.set()
        for waiter in self._turn_waiters.values():
            if not waiter.done():
                waiter.set_result({"owner": AGENT})
        self._turn_waiters.clear()
        for sync_waiter in self._sync_waiters.values():
            if not sync_waiter.done():
                sync_waiter.set_result(False)
        code: int | None = None
        reason = ""
        if self._ws is not None and self._ws.close_code is not None:
            code, reason = self._ws.close_code, self._ws.close_reason or ""
        if not self._stopping:
            logger.info(f"{self}: callbook closed the call ({code} {reason}); the agent goes on")
        await self._call_event_handler("on_closed", code, reason)

    async def _send_when_ready(self, frame: dict[str, Any]) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), self._connect_timeout)
        except TimeoutError:
            return False
        return await self._send(frame)

    async def _send(self, frame: dict[str, Any]) -> bool:
        """Send one frame; False when the socket is gone."""
        ws = self._ws
        if ws is None or self._closed:
            return False
        try:
            async with self._send_lock:
                await ws.send(json.dumps(frame))
            return True
        except ConnectionClosed:
            return False

    async def _stop(self, wait: float) -> None:
        """Send ``stop``, give callbook ``wait`` seconds to finish, then close."""
        if self._stopping:
            return
        self._stopping = True
        if self._run_task is not None and not self._ready.is_set():
            # Still connecting: a stop can't be sent, so stop trying.
            await self._shutdown()
            return
        if await self._send(
            {
                "event": "stop",
                "sequenceNumber": str(next(self._sequence)),
                "streamSid": self._stream_sid,
                "stop": {"accountSid": self._account_sid, "callSid": self._call_sid},
            }
        ) and self._run_task is not None:
            # callbook answers with `done` and closes (1000) once its work is done.
            try:
                await asyncio.wait_for(asyncio.shield(self._run_task), wait)
            except (TimeoutError, asyncio.CancelledError):
                pass
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 1.0)
            except (TimeoutError, WebSocketException, OSError):
                pass
        if self._run_task is not None:
            if not self._run_task.done():
                await self.cancel_task(self._run_task)
            self._run_task = None
        self._closed = True
        self._ready.set()


def _clip(text: str) -> str:
    """At most 4 KiB of UTF-8, cut on a character boundary."""
    data = text.encode()
    if len(data) <= _MAX_TRANSCRIPT_BYTES:
        return text
    return data[:_MAX_TRANSCRIPT_BYTES].decode(errors="ignore")
