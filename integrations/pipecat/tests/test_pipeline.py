"""CallbookProcessor in a real Pipecat pipeline against a real `callbook serve`.

STT, LLM and TTS are text stand-ins (tests/standins.py); everything else is
pipecat-ai as installed: Pipeline, PipelineWorker, WorkerRunner (the 1.14 names
of PipelineTask and PipelineRunner), frame queues and interruptions.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import pytest
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from callbook_pipecat import CallbookProcessor
from conftest import Server
from standins import AgentLLM, CallerSTT, SpeakerTTS

PHONE = "+14155550123"


async def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Call:
    """One call: the stand-ins and callbook's processor in a running pipeline."""

    def __init__(self, url: str, token: str, **kwargs: Any) -> None:
        self.stt, self.llm, self.tts = CallerSTT(), AgentLLM(), SpeakerTTS()
        self.callbook = CallbookProcessor(
            url=url,
            token=token,
            campaign_id="demo",
            recipient_phone=PHONE,
            recipient_first_name="Jane",
            turn_timeout=2.0,
            **kwargs,
        )
        self.says: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.bookings: list[dict[str, Any]] = []
        self.closed: list[tuple[Any, str]] = []
        self.settled = 0  # says already returned by settle()
        # Every frame the processor sends to callbook, as sent.
        self.sent: list[dict[str, Any]] = []
        send = self.callbook._send

        async def recording_send(frame: dict[str, Any]) -> bool:
            ok = await send(frame)
            if ok:
                self.sent.append(json.loads(json.dumps(frame)))
            return ok

        self.callbook._send = recording_send  # type: ignore[method-assign]
        for name, sink in (("on_say", self.says), ("on_turn", self.turns), ("on_booking", self.bookings)):
            self.callbook.add_event_handler(name, self._recorder(sink))

        @self.callbook.event_handler("on_closed")
        async def on_closed(_: CallbookProcessor, code: Any, reason: str) -> None:
            self.closed.append((code, reason))

        self.worker = PipelineWorker(
            Pipeline([self.stt, self.callbook, self.llm, self.tts]),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )
        self._run: asyncio.Task[None] | None = None

    @staticmethod
    def _recorder(sink: list[dict[str, Any]]) -> Callable[..., Awaitable[None]]:
        async def record(_: CallbookProcessor, body: dict[str, Any]) -> None:
            sink.append(body)

        return record

    async def __aenter__(self) -> Call:
        await self.start()
        await eventually(lambda: self.callbook.server_version is not None, "callbook's connected frame")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.end()
        else:
            await self.worker.cancel()
            if self._run is not None:
                await asyncio.wait_for(self._run, 10)

    async def start(self) -> None:
        """Run the pipeline in the background."""
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())

    async def end(self) -> None:
        """Hang up: EndFrame through the pipeline, and wait for it to finish."""
        await self.worker.queue_frame(EndFrame())
        assert self._run is not None
        await asyncio.wait_for(self._run, 10)

    async def hear(self, text: str) -> dict[str, Any]:
        """The caller says ``text``; returns callbook's turn answer for it."""
        before = len(self.turns)
        await self.stt.hear(text)
        await eventually(lambda: len(self.turns) > before, f"the turn for {text!r}")
        return self.turns[before]

    async def settle(self) -> list[dict[str, Any]]:
        """Wait until callbook has answered everything and its says were heard in full.

        Returns the says that arrived since the last settle.
        """
        assert await self.callbook.sync(), "callbook did not answer sync"
        new = self.says[self.settled :]
        self.settled = len(self.says)
        for say in new:
            await self.heard(say)
        return new

    async def heard(self, say: dict[str, Any]) -> None:
        """Wait until ``say`` was played to the end and marked to callbook."""
        ids = [s["id"] for s in self.says]
        position = ids.index(say["id"])
        await eventually(
            lambda: self.callbook.last_mark in ids and ids.index(self.callbook.last_mark) >= position,
            f"the mark for {say['id']}",
        )
        assert say["text"] in self.tts.spoken

    def statuses(self) -> list[str]:
        return [b["status"] for b in self.bookings]

    def booking(self, status: str) -> dict[str, Any]:
        found = [b for b in self.bookings if b["status"] == status]
        assert found, f"no booking {status!r} in {self.statuses()}"
        return found[-1]

    def sent_events(self) -> list[str]:
        return [f["event"] for f in self.sent]


@pytest.mark.asyncio
async def test_seed_call_books_and_the_llm_never_sees_callbooks_turns(
    callbook_server: Server,
) -> None:
    call = Call(callbook_server.ws_url, callbook_server.token)
    async with call:
        # Protocol 1.x from 1.2 on (turns, playback reports) is what the
        # processor speaks; later minor versions only add.
        major, minor, _ = (int(p) for p in call.callbook.server_version.split("."))
        assert (major, minor) >= (1, 2) and major == 1

        # Before any booking the agent owns the conversation.
        await call.stt.hear_interim("what's the")
        turn = await call.hear("what's the weather like there?")
        assert turn["owner"] == "agent" and turn["id"] == "t1"
        await eventually(lambda: "Agent reply 1." in call.tts.spoken, "the agent's answer")

        # The agent decides a meeting makes sense.
        assert await call.callbook.offer()
        offer_says = await call.settle()
        assert [s["text"] for s in offer_says] == ["Would you like to book a 30-minute meeting with Alex Morgan?"]

        callbook_lines = [
            "Sure, that sounds good.",
            "yeah it's jane dot doe at gmail dot com",
            "yes that's right",
            "yes, that works for me",
        ]
        for line in callbook_lines:
            turn = await call.hear(line)
            assert turn["owner"] == "callbook", (line, turn)
            assert await call.settle(), f"callbook said nothing after {line!r}"

        booked = call.booking("booked")
        assert booked["event_id"]
        assert call.booking("email_confirmed")["email"] == "jane.doe@gmail.com"
        assert booked["start"] == call.booking("proposed")["start"]

        # After the booking the agent has the floor again.
        turn = await call.hear("thanks, that's all")
        assert turn["owner"] == "agent" and turn["floor"] is False
        await eventually(lambda: "Agent reply 2." in call.tts.spoken, "the agent's answer")

    # The LLM got the agent's turns and none of callbook's.
    assert call.llm.transcripts == ["what's the weather like there?", "thanks, that's all"]
    assert call.llm.interims == ["what's the"]
    # Every say was spoken in full, in order, and marked.
    assert [s["text"] for s in call.says] == [t for t in call.tts.spoken if not t.startswith("Agent reply")]
    assert call.callbook.last_mark == call.says[-1]["id"]
    assert call.tts.cut == []
    # The LLM knows how it ended.
    assert any(booked["event_id"] in note and note.startswith("Meeting booked for") for note in call.llm.notes)
    assert call.statuses() == ["offered", "email_confirmed", "proposed", "booked", "done"]
    assert call.booking("done")["booked"] is True
    # What went over the wire.
    events = call.sent_events()
    assert events[:3] == ["connected", "start", "capabilities"]
    assert events[-1] == "stop"
    start = call.sent[1]["start"]
    assert start["customParameters"] == {
        "campaign_id": "demo",
        "recipient_phone": PHONE,
        "recipient_first_name": "Jane",
        "callbook_playback": "marks",
    }
    transcripts = [f["transcript"] for f in call.sent if f["event"] == "transcript"]
    assert [t["text"] for t in transcripts] == [
        "what's the weather like there?",
        *callbook_lines,
        "thanks, that's all",
    ]
    assert all(t["final"] is True for t in transcripts)
    assert "clear" not in events
    assert call.closed and call.closed[0][0] == 1000


@pytest.mark.asyncio
async def test_a_yes_to_a_proposal_cut_by_a_barge_in_books_nothing(callbook_server: Server) -> None:
    call = Call(callbook_server.ws_url, callbook_server.token)
    async with call:
        # The caller already agreed and the agent knows the address.
        assert await call.callbook.offer(agreed=True, email="jane.doe@gmail.com")
        (read_back,) = await call.settle()
        assert "Juliet" in read_back["text"]

        # The proposal plays until the caller talks over it.
        call.tts.hold_next = True
        assert (await call.hear("yes that's right"))["owner"] == "callbook"
        assert await call.callbook.sync()
        proposal = call.says[-1]
        proposed = call.booking("proposed")
        assert await asyncio.wait_for(call.tts.events.get(), 5) == ("started", read_back["text"])
        assert await asyncio.wait_for(call.tts.events.get(), 5) == ("finished", read_back["text"])
        assert await asyncio.wait_for(call.tts.events.get(), 5) == ("started", proposal["text"])
        await call.llm.barge_in()
        assert await asyncio.wait_for(call.tts.events.get(), 5) == ("cut", proposal["text"])
        assert {"event": "clear", "streamSid": call.callbook.stream_sid, "clear": {"say": proposal["id"]}} in call.sent
        assert not any(f["event"] == "mark" and f["mark"]["name"] == proposal["id"] for f in call.sent)
        call.settled = len(call.says)

        # A yes to what the caller did not hear in full books nothing: callbook asks again.
        turn = await call.hear("yes")
        assert turn["owner"] == "callbook"
        (re_ask,) = await call.settle()
        assert re_ask["id"] != proposal["id"]
        assert re_ask["text"].rstrip().endswith("?"), re_ask
        assert "booked" not in call.statuses()

        # Heard in full this time, the yes books the same slot.
        turn = await call.hear("yes")
        assert turn["owner"] == "callbook"
        await call.settle()
        booked = call.booking("booked")
        assert booked["event_id"]
        assert booked["start"] == proposed["start"]

    assert call.llm.transcripts == []
    assert call.tts.cut == [proposal["text"]]
    assert call.statuses().count("booked") == 1


@pytest.mark.asyncio
async def test_hand_back_gives_the_floor_to_the_agent(callbook_server: Server) -> None:
    call = Call(callbook_server.ws_url, callbook_server.token)
    async with call:
        assert await call.callbook.offer()
        await call.settle()
        assert (await call.hear("hmm, what does it cost?"))["owner"] == "callbook"
        await call.settle()
        # The agent takes the floor back: callbook stops asking.
        assert await call.callbook.hand_back()
        assert await call.callbook.sync()
        done = call.booking("done")
        assert (done["booked"], done["reason"]) == (False, "handed_back")
        turn = await call.hear("so what does it cost?")
        assert (turn["id"], turn["owner"], turn["floor"]) == ("t2", "agent", False)
    assert call.llm.transcripts == ["so what does it cost?"]
    assert any("yours again" in note for note in call.llm.notes)


@pytest.mark.asyncio
async def test_without_callbook_the_agent_answers_everything() -> None:
    # Nothing listens on this port: the processor fails open.
    call = Call("ws://127.0.0.1:9/v1/calls", "nobody-is-listening", connect_timeout=1.0)
    await call.start()
    await eventually(lambda: call.callbook._ready.is_set(), "the connection attempt to fail")
    await call.stt.hear("can we set up a meeting?")
    await eventually(lambda: call.llm.transcripts == ["can we set up a meeting?"], "the agent to get it")
    assert not await call.callbook.offer()
    await call.end()
    assert call.sent == []


@pytest.mark.asyncio
@pytest.mark.callbook_args("--drain-seconds", "0")
async def test_callbook_shutting_down_leaves_the_call_to_the_agent(callbook_server: Server) -> None:
    call = Call(callbook_server.ws_url, callbook_server.token)
    async with call:
        assert await call.callbook.offer()
        await call.settle()
        # callbook stops mid-booking: `done` (shutdown), then 1001; the pipeline goes on.
        callbook_server.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: bool(call.closed), "callbook to close the call", timeout=10)
        assert call.closed[0][0] == 1001, call.closed
        # callbook says how the call ended before it closes.
        done = call.booking("done")
        assert (done["booked"], done["reason"]) == (False, "shutdown")
        await call.stt.hear("sorry, what was that?")
        await eventually(lambda: call.llm.transcripts == ["sorry, what was that?"], "the agent to get it")
    assert call.sent_events()[-1] != "stop"  # nothing is sent on a closed socket
