"""The notes the LLM gets for booking statuses."""

from __future__ import annotations

from callbook_pipecat import booking_note


def test_booked_names_the_time_and_the_event() -> None:
    note = booking_note(
        {
            "status": "booked",
            "start": "2026-12-01T19:00:00Z",
            "end": "2026-12-01T19:30:00Z",
            "event_id": "1bb729be",
            "join_link": "https://meet.example/x",
        }
    )
    assert note is not None
    assert note.startswith("Meeting booked for 2026-12-01 19:00 UTC")
    assert "(event 1bb729be)" in note


def test_endings_give_the_floor_back_and_progress_says_nothing() -> None:
    assert "declined" in (booking_note({"status": "declined"}) or "")
    assert "email_unconfirmed" in (booking_note({"status": "failed", "reason": "email_unconfirmed"}) or "")
    assert "yours again" in (booking_note({"status": "done", "booked": False, "reason": "handed_back"}) or "")
    assert booking_note({"status": "proposed", "start": "2026-12-01T19:00:00Z"}) is None
    assert booking_note({"status": "done", "booked": True, "reason": "hangup"}) is None


def test_the_confirmed_email_stays_out_of_the_context() -> None:
    assert booking_note({"status": "email_confirmed", "email": "jane.doe@gmail.com"}) is None
