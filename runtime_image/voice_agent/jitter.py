"""An adaptive playout buffer for one incoming audio stream (pure logic: no asyncio, no codec).

Packets go in as they arrive (``push``); frames come out on the buffer's own clock (``pop``), one
per packet duration, whatever the network does:

- **Delay follows the jitter.** Every packet's transit time (arrival minus its RTP timestamp) is
  compared with the fastest transit seen in the last few seconds; the playout delay aims at the
  95th percentile of that jitter plus one frame (so the next packet, which carries the FEC for a
  lost one, is usually there in time), within ``min_delay`` and ``max_delay``.
- **A missing packet never stalls playout.** When its turn comes it is recovered from the next
  packet's in-band FEC if that packet is already here, or concealed; playout moves on. A packet
  that arrives after its turn is dropped (late); a repeated one is dropped (duplicate); packets
  that arrive out of order within the delay are played in order.
- **The delay comes back.** Above target (a burst of delayed packets arrived at once) a frame is
  dropped, preferably a quiet one; below target (packets started to come late) a concealment frame
  is inserted. So no network event adds delay for the rest of the call.
- **Lost packets are asked for again.** A gap in the sequence numbers, or a packet that is overdue by
  more than the jitter allows, is requested once (``take_requests``: the receive path sends an RTCP
  NACK). Senders that keep a history, aiortc's among them, send it again; once retransmissions are
  seen to arrive, the delay makes room for them (their 90th percentile), when that costs at most
  ``max_nack_extra`` over what the jitter asks for.
  Browsers do not retransmit audio: for them nothing comes back and the delay stays as it is.
- **Long gaps.** After ``max_conceal_frames`` concealed in a row (the caller went away, the network
  died) playout pauses until packets come back; a jump of more than ``max_gap_frames`` packets
  (a restarted sender) starts playout afresh at the new packet.

RTP sequence numbers (16 bits) and timestamps (32 bits) are unwrapped, so wrap-around is invisible.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

RTP_CLOCK = 48_000
"""Opus's RTP clock rate (RFC 7587), whatever the rate of the audio inside."""
DEFAULT_TICKS = 960
"""20 ms at 48 kHz: the packet duration until the stream says otherwise."""


class Kind(enum.Enum):
    PACKET = "packet"
    """Decode ``payload``."""
    FEC = "fec"
    """The packet is missing: recover it from the FEC in ``payload`` (the next packet)."""
    CONCEAL = "conceal"
    """The packet is missing and nothing can recover it: conceal ``ticks`` of audio."""


class Playout(NamedTuple):
    """One frame to play (a tuple: made 50 times a second per call)."""

    kind: Kind
    ticks: int
    """Duration in RTP ticks (48 kHz)."""
    payload: bytes | None = None
    drop: bool = False
    """Decode it (the decoder's state must follow the stream) but do not play it: the delay is too high."""
    drop_if_quiet: bool = False
    """The delay is above target: leave this frame out if it is quiet (``PlayoutBuffer.skip``)."""


@dataclass(frozen=True, kw_only=True)
class PlayoutSettings:
    min_delay: float = 0.020
    max_delay: float = 0.300
    initial_delay: float = 0.040
    jitter_percentile: float = 95.0
    jitter_window: int = 100
    """Packets (2 s at 20 ms) over which the jitter percentile is taken."""
    base_window: float = 4.0
    """Seconds over which the fastest transit is tracked (longer follows clock drift more slowly)."""
    hysteresis: float = 0.020
    """The delay may sit this far above its target before it is brought down (one frame: a step of
    the correction), and never below it, so the packets the target is there for are in time."""
    force_drop_above: float = 0.060
    """Further above target than this, frames are dropped whether or not they are quiet."""
    max_gap_frames: int = 50
    max_conceal_frames: int = 25
    nack: bool = True
    """Ask for lost packets again (RTCP NACK)."""
    max_nack_delay: float = 0.150
    """A retransmission that takes longer than this is not waited for."""
    max_nack_extra: float = 0.030
    """Nor one that would add more than this to the delay the jitter alone asks for: a round trip
    costs delay on every frame, and 30 ms is what a caller may lose to a lossy network."""
    nack_margin: float = 0.005
    max_nack_batch: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.min_delay <= self.initial_delay <= self.max_delay:
            raise ValueError("need 0 < min_delay <= initial_delay <= max_delay")


@dataclass
class PlayoutStats:
    received: int = 0
    played: int = 0
    """Frames played from their own packet."""
    recovered: int = 0
    """Missing packets played from the next packet's FEC."""
    concealed: int = 0
    """Missing packets concealed (and frames inserted to grow the delay)."""
    late: int = 0
    duplicates: int = 0
    reordered: int = 0
    """Arrived after a later packet, but in time to be played in order."""
    dropped: int = 0
    """Frames left out to bring the delay down."""
    inserted: int = 0
    resyncs: int = 0
    pauses: int = 0
    requested: int = 0
    """Packets asked for again (NACK)."""
    retransmitted: int = 0
    """Packets asked for that came in time to be played."""


class _Packet(NamedTuple):
    ts: int
    payload: bytes
    ticks: int


@dataclass
class _Window:
    """The minimum over a sliding time window (monotonic deque) of transit times."""

    seconds: float
    _items: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, at: float, value: float) -> None:
        while self._items and self._items[-1][1] >= value:
            self._items.pop()
        self._items.append((at, value))
        while self._items[0][0] < at - self.seconds:
            self._items.popleft()

    @property
    def minimum(self) -> float:
        return self._items[0][1]

    def clear(self) -> None:
        self._items.clear()


class PlayoutBuffer:
    def __init__(self, settings: PlayoutSettings | None = None) -> None:
        self.settings = settings or PlayoutSettings()
        self.stats = PlayoutStats()
        self._packets: dict[int, _Packet] = {}
        self._highest: int | None = None
        self._highest_ts: int = 0
        self._next_seq = 0
        self._next_ts = 0
        self._next_time: float | None = None
        self._ticks = DEFAULT_TICKS
        self._base = _Window(self.settings.base_window)
        self._jitter: deque[float] = deque(maxlen=self.settings.jitter_window)
        self._target = self.settings.initial_delay
        self._since_target = 0
        self._concealed_in_a_row = 0
        self._played_received: deque[int] = deque(maxlen=64)
        self._requested: dict[int, float] = {}
        """Packets asked for again, by sequence number: kept a while, so a late answer is known."""
        self._missing: dict[int, int] = {}
        """Packets a later one showed to be missing, with their timestamps, until asked for or here."""
        self._recoveries: deque[tuple[float, float]] = deque(maxlen=20)
        self._last_arrival = 0.0
        self._jitter_level = 0.0

    # --- what the caller reads -----------------------------------------------------------------
    @property
    def next_due(self) -> float | None:
        """When the next frame is due (None: waiting for a packet)."""
        return self._next_time

    @property
    def target_delay(self) -> float:
        return self._target

    @property
    def jitter_level(self) -> float:
        """The measured jitter the target follows (its ``jitter_percentile``), in seconds."""
        return self._jitter_level

    @property
    def delay(self) -> float | None:
        """The current playout delay above the fastest transit (None before the first packet)."""
        if self._next_time is None or not self._base._items:
            return None
        return self._next_time - (self._next_ts / RTP_CLOCK + self._base.minimum)

    # --- packets in ----------------------------------------------------------------------------
    def push(self, sequence_number: int, timestamp: int, payload: bytes, ticks: int, arrival: float) -> None:
        """One RTP packet: 16-bit sequence number, 32-bit timestamp, its duration in 48 kHz ticks."""
        self.stats.received += 1
        seq = self._unwrap_seq(sequence_number)
        ts = self._unwrap_ts(timestamp)
        ticks = ticks if ticks > 0 else self._ticks
        self._last_arrival = arrival
        requested = self._requested.pop(seq, None) is not None
        self._missing.pop(seq, None)
        if requested:
            # A retransmission: how long after its first chance it came, not network jitter.
            self._recoveries.append((arrival, arrival - ts / RTP_CLOCK - self._base.minimum))
        else:
            self._observe_transit(arrival, ts)

        far = self.settings.max_gap_frames
        if self._next_time is None:
            self._start(seq, ts, ticks, arrival)
        elif seq > self._next_seq + far or ts > self._next_ts + far * self._ticks:
            self.stats.resyncs += 1
            self._start(seq, ts, ticks, arrival)
        elif seq < self._next_seq or ts < self._next_ts - self._ticks // 2:
            # Its turn has passed (played, or concealed because it was not here).
            if seq in self._played_received or seq in self._packets:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return
        if seq in self._packets:
            self.stats.duplicates += 1
            return
        if requested:
            self.stats.retransmitted += 1
        elif self._highest is not None and seq < self._highest:
            self.stats.reordered += 1
        self._packets[seq] = _Packet(ts, payload, ticks)
        if self._highest is None or seq > self._highest:
            if self.settings.nack and self._highest is not None and seq > self._highest + 1:
                for n in range(max(self._highest + 1, seq - self.settings.max_nack_batch), seq):
                    if n not in self._requested:
                        self._missing[n] = ts - (seq - n) * ticks
            self._highest, self._highest_ts = seq, ts

    def _start(self, seq: int, ts: int, ticks: int, arrival: float) -> None:
        """(Re)start playout at this packet: everything older is forgotten."""
        self._packets.clear()
        self._next_seq, self._next_ts, self._ticks = seq, ts, ticks
        self._next_time = arrival + self._target
        self._concealed_in_a_row = 0
        self._highest, self._highest_ts = seq, ts
        self._requested.clear()
        self._missing.clear()

    def _observe_transit(self, arrival: float, ts: int) -> None:
        transit = arrival - ts / RTP_CLOCK
        self._base.add(arrival, transit)
        self._jitter.append(transit - self._base.minimum)
        self._since_target += 1
        if self._since_target >= 10 or len(self._jitter) < 10:
            self._since_target = 0
            self._target = self._new_target()

    def _new_target(self) -> float:
        settings = self.settings
        frame = self._ticks / RTP_CLOCK
        self._jitter_level = _percentile(self._jitter, settings.jitter_percentile)
        target = self._jitter_level + frame
        recent = [delay for at, delay in self._recoveries if at >= self._last_arrival - 5.0]
        if recent:
            # Retransmissions arrive: wait for most of them, if they are quick enough to be worth it.
            wait = _percentile(recent, 90.0) + settings.nack_margin
            if wait <= settings.max_nack_delay and wait - target <= settings.max_nack_extra:
                target = max(target, wait)
        return min(max(target, settings.min_delay), settings.max_delay)

    # --- retransmission requests ---------------------------------------------------------------
    @property
    def next_request_due(self) -> float | None:
        """When the earliest packet a later one showed missing is overdue by more than the jitter
        allows (it is then asked for). Only a gap is evidence: a packet merely late is jitter."""
        if not self._missing or not self._base._items:
            return None
        return self._overdue_at(min(self._missing.values()))

    def _overdue_at(self, ts: int) -> float:
        return ts / RTP_CLOCK + self._base.minimum + self._jitter_level + self.settings.nack_margin

    def take_requests(self, now: float) -> list[int]:
        """The 16-bit sequence numbers to ask for again now; each is asked for once."""
        if not self._missing or not self._base._items:
            return []
        wanted = sorted(
            n for n, ts in self._missing.items() if n >= self._next_seq and now >= self._overdue_at(ts)
        )
        for n in wanted:
            del self._missing[n]
            self._requested[n] = now
        for stale in [n for n in self._missing if n < self._next_seq]:
            del self._missing[stale]
        while len(self._requested) > 256:  # a late answer is still recognised for ~5 s of requests
            del self._requested[next(iter(self._requested))]
        self.stats.requested += len(wanted)
        return [n & 0xFFFF for n in wanted]

    # --- frames out ----------------------------------------------------------------------------
    def pop(self, now: float) -> Playout | None:
        """The next frame if it is due at ``now``, else None. Call until None at each wake-up.

        Playout follows the media clock (RTP timestamps), so a lost packet, a reordered one and a
        sender that paused (DTX) are told apart by what is in the buffer when a slot comes up."""
        if self._next_time is None or now < self._next_time:
            return None
        delay = self.delay
        frame = self._ticks / RTP_CLOCK
        if delay is not None and delay < self._target - 0.001:
            # Packets are coming later than the delay allows: conceal once and keep the position.
            self.stats.inserted += 1
            self.stats.concealed += 1
            self._next_time += frame
            return Playout(Kind.CONCEAL, self._ticks)
        above = delay is not None and delay > self._target + self.settings.hysteresis
        force = delay is not None and delay > self._target + self.settings.force_drop_above

        first = self._first_buffered()
        half = self._ticks // 2
        if first is not None and abs(self._packets[first].ts - self._next_ts) <= half:
            packet = self._packets.pop(first)
            self._next_seq = first + 1
            self._next_ts = packet.ts + packet.ticks
            self._ticks = packet.ticks
            self._played_received.append(first)
            self._concealed_in_a_row = 0
            if force:
                self.stats.dropped += 1
            else:
                self.stats.played += 1
                self._next_time += packet.ticks / RTP_CLOCK
            return Playout(Kind.PACKET, packet.ticks, packet.payload, drop=force, drop_if_quiet=above)

        # Nothing for this slot: lost (a later packet is here), or not sent (the sender paused).
        if first is None and self._concealed_in_a_row >= self.settings.max_conceal_frames:
            # Nothing has come for a while: wait for the next packet instead of concealing on.
            self._next_time = None
            self.stats.pauses += 1
            return None
        self._concealed_in_a_row += 1
        # A packet carries the FEC of the frame just before it: usable if it is this slot's successor.
        successor = first is not None and abs(self._packets[first].ts - (self._next_ts + self._ticks)) <= half
        if successor:
            assert first is not None
            item = Playout(Kind.FEC, self._ticks, self._packets[first].payload)
            self.stats.recovered += 1
        else:
            item = Playout(Kind.CONCEAL, self._ticks)
            self.stats.concealed += 1
        self._next_ts += self._ticks
        self._next_time += frame
        return item

    def _first_buffered(self) -> int | None:
        """The lowest sequence number in the buffer, dropping packets whose slot has passed."""
        while self._packets:
            first = min(self._packets)
            if self._packets[first].ts >= self._next_ts - self._ticks // 2:
                return first
            del self._packets[first]
            self.stats.late += 1
        return None

    def skip(self, item: Playout) -> None:
        """The caller left a ``drop_if_quiet`` frame out: the next one is due at once."""
        if self._next_time is not None:
            self._next_time -= item.ticks / RTP_CLOCK
            self.stats.played -= 1
            self.stats.dropped += 1

    # --- unwrapping ----------------------------------------------------------------------------
    def _unwrap_seq(self, sequence_number: int) -> int:
        if self._highest is None:
            return sequence_number
        delta = ((sequence_number - self._highest) + 0x8000) % 0x10000 - 0x8000
        return self._highest + delta

    def _unwrap_ts(self, timestamp: int) -> int:
        if self._highest is None:
            return timestamp
        delta = ((timestamp - self._highest_ts) + 0x80000000) % 0x100000000 - 0x80000000
        return self._highest_ts + delta


def _percentile(values: deque[float] | list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percentile / 100))]
