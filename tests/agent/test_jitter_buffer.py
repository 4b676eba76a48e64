"""The adaptive playout buffer (voice_agent.jitter) on scripted networks, and aiortc's own beside it.

A scripted network is a list of packets with their arrival times; the buffer is driven the way the
agent drives it: every packet pushed when it arrives, and frames popped at each due time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise

import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from voice_agent.jitter import Kind, Playout, PlayoutBuffer, PlayoutSettings

FRAME = 0.020
TICKS = 960


@dataclass(frozen=True)
class Sent:
    seq: int
    arrival: float | None
    """None: lost."""
    ts: int | None = None

    def timestamp(self, first_ts: int) -> int:
        return self.ts if self.ts is not None else (first_ts + self.seq * TICKS) % 2**32


def network(
    count: int,
    *,
    delay: float = 0.030,
    jitter: float = 0.0,
    lost: set[int] = frozenset(),
    seed: int = 7,
    period: float = FRAME,
) -> list[Sent]:
    """Packets sent every ``period`` and delayed by ``delay`` plus up to ``jitter``."""
    rng = random.Random(seed)
    return [
        Sent(seq=n, arrival=None if n in lost else n * period + delay + rng.random() * jitter)
        for n in range(count)
    ]


@dataclass
class Played:
    at: float
    item: Playout
    seq: int | None


def run(
    packets: list[Sent],
    *,
    first_seq: int = 1000,
    first_ts: int = 5000,
    settings: PlayoutSettings | None = None,
    until: float | None = None,
    quiet: bool = False,
    retransmit_after: float | None = None,
    requests: list[tuple[float, int]] | None = None,
) -> tuple[PlayoutBuffer, list[Played]]:
    """Push every packet at its arrival and pop every frame when due; ``payload`` carries the seq.

    ``quiet``: every frame is quiet, so the frames the buffer offers to leave out are left out (as
    the agent does with silence); otherwise every frame is speech and only forced drops happen.
    ``retransmit_after``: the sender answers each request (NACK) with the packet after this long, as
    aiortc's sender does; ``requests`` collects (time, index) of every request."""
    buffer = PlayoutBuffer(settings)
    arrivals = sorted((p for p in packets if p.arrival is not None), key=lambda p: p.arrival)
    end = until if until is not None else max(p.arrival for p in arrivals) + 1.0
    by_seq16 = {(first_seq + p.seq) % 2**16: p for p in packets}
    played: list[Played] = []
    index = 0
    now = 0.0

    def ask(at: float) -> None:
        for seq16 in buffer.take_requests(at):
            sent = by_seq16.get(seq16)
            if sent is None:
                continue  # after the stream's end: the sender never sent it
            if requests is not None:
                requests.append((at, sent.seq))
            if retransmit_after is not None:
                again = Sent(sent.seq, at + retransmit_after, sent.ts)
                position = next(
                    (i for i in range(index, len(arrivals)) if arrivals[i].arrival > again.arrival), None
                )
                arrivals.insert(len(arrivals) if position is None else position, again)

    while now <= end:
        due = buffer.next_due
        asked = buffer.next_request_due
        next_arrival = arrivals[index].arrival if index < len(arrivals) else None
        if (
            asked is not None
            and (due is None or asked < due)
            and (next_arrival is None or asked < next_arrival)
        ):
            now = asked
            ask(now)
            continue
        if next_arrival is not None and (due is None or next_arrival <= due):
            now = next_arrival
            p = arrivals[index]
            index += 1
            seq16 = (first_seq + p.seq) % 2**16
            buffer.push(seq16, p.timestamp(first_ts), str(p.seq).encode(), TICKS, now)
            ask(now)
            continue
        if due is None:
            break
        now = due
        while (item := buffer.pop(now)) is not None:
            if quiet and item.drop_if_quiet:
                buffer.skip(item)
                continue
            seq = int(item.payload) if item.kind is Kind.PACKET and item.payload else None
            played.append(Played(now, item, seq))
    return buffer, played


def packets_played(played: list[Played]) -> list[int]:
    """The sequence numbers played from their own packet (not dropped), in playout order."""
    return [p.seq for p in played if p.seq is not None and not p.item.drop]


def playout_times(played: list[Played]) -> dict[int, float]:
    return {p.seq: p.at for p in played if p.seq is not None}


def until_last_packet(played: list[Played]) -> list[Played]:
    """Without the concealment that follows the end of the stream."""
    last = max(i for i, p in enumerate(played) if p.seq is not None)
    return played[: last + 1]


def test_a_clean_stream_plays_every_packet_in_order_one_frame_apart() -> None:
    buffer, played = run(network(100))
    played = until_last_packet(played)
    assert [p.seq for p in played] == list(range(100))
    gaps = {round(b.at - a.at, 6) for a, b in pairwise(played)}
    assert gaps == {FRAME}
    assert buffer.stats.played == 100 and buffer.stats.late == buffer.stats.inserted == 0


def test_on_a_steady_network_the_delay_settles_at_one_frame_above_the_jitter() -> None:
    buffer, played = run(network(300, delay=0.030, jitter=0.0))
    # No jitter at all: the target is the minimum, one frame, and playout sits there.
    assert buffer.target_delay == pytest.approx(PlayoutSettings().min_delay)
    last = until_last_packet(played)[-1]
    assert last.at - (299 * FRAME + 0.030) == pytest.approx(buffer.target_delay, abs=0.011)


def test_the_delay_follows_the_95th_percentile_of_the_jitter_plus_a_frame() -> None:
    buffer, _ = run(network(500, jitter=0.030))
    # Uniform 0-30 ms: the 95th percentile is about 28.5 ms, plus one frame.
    assert 0.040 <= buffer.target_delay <= 0.052
    assert buffer.stats.late <= 0.05 * 500


def test_lost_packets_are_concealed_on_time_and_playout_moves_on() -> None:
    _, played = run(network(50, lost={19, 20}))
    kinds = [p.item.kind for p in played]
    assert kinds[19] is Kind.CONCEAL  # 20 is missing too: nothing to recover 19 from
    assert kinds[20] is Kind.FEC  # 21 was there in time
    assert packets_played(played[21:]) == list(range(21, 50))
    # The concealed frame went out exactly when packet 20 would have: nothing waited for it.
    assert played[20].at - played[19].at == pytest.approx(FRAME)
    assert played[21].at - played[20].at == pytest.approx(FRAME)


def test_a_lost_packet_is_recovered_from_the_next_one_when_it_is_already_here() -> None:
    buffer, played = run(network(50, lost={20}, delay=0.030))
    item = played[20].item
    # One frame of delay above the (zero) jitter: packet 21 is in the buffer when 20's turn comes.
    assert item.kind is Kind.FEC and item.payload == b"21"
    assert buffer.stats.recovered == 1


def test_a_burst_of_loss_is_concealed_frame_by_frame_and_the_delay_is_unchanged() -> None:
    lost = set(range(40, 46))
    buffer, played = run(network(200, lost=lost))
    assert [p.item.kind for p in played[40:45]] == [Kind.CONCEAL] * 5
    assert played[46].seq == 46
    # The frames after the burst leave on the schedule they had before it.
    assert played[100].at - played[30].at == pytest.approx(70 * FRAME)
    assert buffer.stats.inserted == 0 and buffer.stats.dropped == 0


def test_packets_reordered_within_the_delay_are_played_in_order() -> None:
    packets = network(60, jitter=0.0)
    # 10 and 11 swap places on the wire, 30 arrives after 31 and 32.
    swapped = {10: 11 * FRAME + 0.030, 11: 10 * FRAME + 0.030, 30: 32 * FRAME + 0.031}
    packets = [Sent(p.seq, swapped.get(p.seq, p.arrival)) for p in packets]
    # Without jitter, a packet 20 ms out of order is overdue and would be asked for again (NACK):
    # here only the ordering is looked at.
    settings = PlayoutSettings(min_delay=0.060, initial_delay=0.060, nack=False)
    buffer, played = run(packets, settings=settings)
    assert packets_played(played) == list(range(60))
    assert buffer.stats.reordered == 2 and buffer.stats.late == 0


def test_a_packet_that_arrives_after_its_turn_is_dropped_as_late() -> None:
    packets = [Sent(p.seq, p.arrival + (0.5 if p.seq == 25 else 0.0)) for p in network(60)]
    buffer, played = run(packets)
    assert buffer.stats.late == 1
    assert played[25].item.kind in (Kind.CONCEAL, Kind.FEC)
    assert 25 not in [p.seq for p in played[26:]]


def test_duplicates_are_played_once() -> None:
    packets = network(40)
    packets += [Sent(12, packets[12].arrival + 0.001), Sent(30, packets[30].arrival + 0.200)]
    buffer, played = run(packets)
    assert packets_played(played) == list(range(40))
    assert buffer.stats.duplicates == 2


def test_sequence_numbers_and_timestamps_wrap_around_unnoticed() -> None:
    buffer, played = run(network(100, lost={50}), first_seq=65_500, first_ts=2**32 - 20 * TICKS)
    assert packets_played(played) == [n for n in range(100) if n != 50]
    assert buffer.stats.resyncs == 0 and buffer.stats.late == 0


def test_clock_drift_is_followed_without_loss_or_growing_delay() -> None:
    # The sender's clock runs 0.5% slow: a packet every 20.1 ms of ours for 60 s.
    packets = network(3000, period=FRAME * 1.005, jitter=0.005)
    buffer, played = run(packets)
    assert buffer.stats.late < 10
    assert buffer.stats.inserted > 0  # it made room for the extra 15 s the sender took
    assert_delay_stays_near_target(packets, played, buffer)


def test_a_fast_sender_clock_is_followed_by_dropping_frames() -> None:
    packets = network(3000, period=FRAME * 0.995, jitter=0.005)
    buffer, played = run(packets, quiet=True)
    assert buffer.stats.dropped > 0
    assert_delay_stays_near_target(packets, played, buffer)


def test_in_continuous_speech_the_extra_delay_is_capped() -> None:
    """No quiet frame to leave out: frames are dropped only once the delay is well above target."""
    packets = network(3000, period=FRAME * 0.995, jitter=0.005)
    buffer, played = run(packets)
    times = playout_times(played)
    waits = [times[p.seq] - p.arrival for p in packets[-1000:] if p.seq in times]
    assert max(waits) < buffer.target_delay + PlayoutSettings().force_drop_above + 0.015


def assert_delay_stays_near_target(packets: list[Sent], played: list[Played], buffer: PlayoutBuffer) -> None:
    """Every packet of the last 20 s waited in the buffer about as long as the target, no more."""
    times = playout_times(played)
    waits = [times[p.seq] - p.arrival for p in packets[-1000:] if p.seq in times and p.arrival is not None]
    assert max(waits) < buffer.target_delay + 0.025


def test_after_a_delay_spike_the_delay_returns_to_its_target() -> None:
    # A Wi-Fi stall: packets 100-124 held back and delivered together at 2.5 s + 30 ms.
    packets = [Sent(p.seq, max(p.arrival, 2.53) if 100 <= p.seq < 125 else p.arrival) for p in network(600)]
    buffer, played = run(packets, quiet=True)
    assert buffer.stats.dropped > 0
    # Long after the stall, packets wait no longer than before it: back in the band above the target.
    times = playout_times(played)
    before = times[90] - packets[90].arrival
    after = times[590] - packets[590].arrival
    band = PlayoutSettings().hysteresis
    assert before - 0.001 <= after <= before + band + 0.001


def test_a_gap_longer_than_the_window_pauses_then_restarts_at_the_new_packet() -> None:
    # The caller goes away for 3 s (nothing arrives), then comes back 150 packets later.
    packets = network(100) + [Sent(n, n * FRAME + 0.030) for n in range(250, 300)]
    buffer, played = run(packets)
    concealed_run = [p for p in played if p.seq is None and 100 * FRAME < p.at < 250 * FRAME]
    assert len(concealed_run) == PlayoutSettings().max_conceal_frames  # then it stopped
    assert buffer.stats.pauses == 2  # the gap, and the end of the stream
    assert [seq for seq in packets_played(played) if seq >= 250] == list(range(250, 300))


def test_a_sender_that_jumps_far_ahead_is_resynchronised() -> None:
    packets = network(50) + [Sent(n + 1000, (50 + n) * FRAME + 0.030) for n in range(50)]
    buffer, played = run(packets)
    assert buffer.stats.resyncs == 1
    assert packets_played(played)[-1] == 1049


def test_a_timestamp_gap_without_a_sequence_gap_is_filled_with_concealment() -> None:
    # Discontinuous transmission: packet 30 comes 10 frames' time after packet 29, seq contiguous,
    # so nothing says it is late when slots 30-39 come up empty: they are concealed, not lost.
    packets = [
        Sent(n, n * FRAME + 0.03 + (0.2 if n >= 30 else 0), ts=5000 + (n + (10 if n >= 30 else 0)) * TICKS)
        for n in range(60)
    ]
    buffer, played = run(packets)
    start = next(i for i, p in enumerate(played) if p.seq == 29) + 1
    gap = [p.item.kind for p in played[start : start + 10]]
    # The last slot may try packet 30's FEC (the receive path finds none after a pause and conceals).
    assert gap[:9] == [Kind.CONCEAL] * 9 and gap[9] in (Kind.CONCEAL, Kind.FEC)
    assert played[start + 10].seq == 30
    assert buffer.stats.late == 0


# --- aiortc's own buffer, for comparison -------------------------------------------------------


def aiortc_frames(lost: set[int], count: int = 60) -> list[tuple[int, int | None]]:
    """(packet index that was just added, frame timestamp that came out) for aiortc's audio buffer."""
    buffer = JitterBuffer(capacity=16, prefetch=4)
    out = []
    for n in range(count):
        if n in lost:
            continue
        packet = RtpPacket(payload_type=111, sequence_number=n, timestamp=n * TICKS)
        packet._data = b"x"  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        out.append((n, None if frame is None else frame.timestamp // TICKS))
    return out


def test_aiortc_holds_every_frame_after_a_loss_until_its_buffer_is_full() -> None:
    """Why the agent has its own: aiortc's audio buffer stops at a missing packet and keeps going
    only once 16 packets have piled up, one frame per packet after that, so the stall stays."""
    frames = aiortc_frames(lost={20})
    stalled = [n for n, frame in frames if 20 < n and frame is None]
    assert len(stalled) >= 10  # about 200 ms with nothing coming out
    # Afterwards it emits one frame per packet added, still about 12 frames behind: the delay stays.
    behind = [n - frame for n, frame in frames if frame is not None and n > 40]
    assert min(behind) >= 10

    # The agent's buffer, fed the same packets, is never more than its target behind.
    _, played = run(network(60, lost={20}))
    assert all(p.at - (p.seq or 0) * FRAME < 0.1 for p in played if p.seq is not None)


# --- asking for lost packets again (NACK) --------------------------------------------------------


def test_a_gap_is_asked_for_as_soon_as_the_next_packet_shows_it() -> None:
    requests: list[tuple[float, int]] = []
    buffer, _ = run(network(60, lost={20, 21}), requests=requests)
    gap = [(at, n) for at, n in requests if n in (20, 21)]
    assert sorted(n for _, n in gap) == [20, 21]
    # Both are asked for the moment packet 22 shows the gap: they are already overdue.
    assert all(at == pytest.approx(22 * FRAME + 0.030) for at, _ in gap)
    assert buffer.stats.requested >= 2


def test_each_packet_is_asked_for_once() -> None:
    requests: list[tuple[float, int]] = []
    run(network(300, lost=set(range(10, 300, 9))), requests=requests)
    asked = [n for _, n in requests]
    assert len(asked) == len(set(asked))


def test_retransmissions_that_come_back_are_played_and_the_delay_makes_room_for_them() -> None:
    lost = set(range(30, 600, 20))  # 5%
    settings = PlayoutSettings(max_nack_extra=0.060)
    buffer, played = run(network(600, lost=lost), retransmit_after=0.045, settings=settings)
    # The first few come too late; once the buffer has seen them arrive it waits long enough.
    assert buffer.stats.retransmitted >= len(lost) - 6
    later = [p for p in played if p.seq in lost and p.seq > 200]
    assert len(later) == len([n for n in lost if n > 200])  # every one of those played from its packet
    # A retransmission comes 65 ms after its first chance: 20 ms until the gap shows, then 45 ms.
    assert 0.065 <= buffer.target_delay <= 0.065 + 0.025


def test_with_a_sender_that_never_retransmits_the_delay_stays_at_the_jitters() -> None:
    lost = set(range(30, 600, 20))
    buffer, _ = run(network(600, lost=lost))  # a browser: requests go unanswered
    assert buffer.stats.requested >= len(lost) - 1
    assert buffer.target_delay == pytest.approx(PlayoutSettings().min_delay)


def test_retransmissions_slower_than_the_limit_are_not_waited_for() -> None:
    lost = set(range(30, 600, 20))
    buffer, _ = run(network(600, lost=lost), retransmit_after=0.5)
    assert buffer.target_delay < 0.1


def test_retransmissions_are_not_waited_for_when_that_costs_more_than_the_extra_allowed() -> None:
    lost = set(range(30, 600, 20))
    buffer, _ = run(network(600, lost=lost), retransmit_after=0.045)  # 65 ms: 45 more than the jitter's 20
    assert buffer.target_delay <= PlayoutSettings().min_delay + PlayoutSettings().max_nack_extra


def test_quick_retransmissions_are_waited_for_within_the_extra_allowed() -> None:
    lost = set(range(30, 600, 20))
    buffer, _ = run(network(600, lost=lost), retransmit_after=0.010)
    assert buffer.stats.retransmitted >= len(lost) - 6
    assert buffer.target_delay <= PlayoutSettings().min_delay + PlayoutSettings().max_nack_extra
