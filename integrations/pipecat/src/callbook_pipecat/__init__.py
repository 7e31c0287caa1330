"""callbook for Pipecat: meeting bookings inside a Pipecat voice agent.

See :class:`CallbookProcessor`.
"""

from callbook_pipecat.processor import PROTOCOL_VERSION, CallbookProcessor, booking_note

__all__ = ["PROTOCOL_VERSION", "CallbookProcessor", "booking_note"]
__version__ = "0.1.0"
