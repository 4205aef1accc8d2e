"""Flow control of one viewer link: frames sent and not yet acknowledged, the round-trip time
of Sync → Ack, and the JPEG quality it allows (docs/PROTOCOL.md, "Flow control").

Attacker-controlled: Ack frame ids (the pipeline refuses ids never taken before calling ack).
Limits: the window holds at most the pipeline's max_unacked frames, so the table stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_QUALITY, MAX_QUALITY = 30, 85


@dataclass(slots=True)
class Link:
    in_flight: dict[int, tuple[float, int]] = field(default_factory=dict)  # id -> (sent, bytes)
    srtt: float | None = None
    min_rtt: float | None = None
    quality: int = 80

    def can_send(self, max_unacked: int, max_bytes: int) -> bool:
        """Room for one more frame: always for the first one, else below both limits."""
        inf = self.in_flight
        return not inf or (len(inf) < max_unacked
                           and sum(b for _, b in inf.values()) < max_bytes)

    def sent(self, frame_id: int, nbytes: int, now: float) -> None:
        self.in_flight[frame_id] = (now, nbytes)

    def ack(self, frame_id: int, now: float) -> bool:
        """The viewer drew every frame up to ``frame_id``; True if the quality changed."""
        sent = self.in_flight.get(frame_id)
        for old in [i for i in self.in_flight if i <= frame_id]:
            del self.in_flight[old]
        if sent is None:
            return False
        quality = self.quality
        self.on_ack(sent[0], now)
        return self.quality != quality

    def on_ack(self, sent: float, now: float) -> None:
        rtt = max(0.0, now - sent)
        self.srtt = rtt if self.srtt is None else 0.8 * self.srtt + 0.2 * rtt
        self.min_rtt = rtt if self.min_rtt is None else min(self.min_rtt, rtt)
        queueing = self.srtt - self.min_rtt
        # Frames waiting in buffers show up as round-trip time above the link's floor.
        if queueing > 0.15 or self.srtt > 0.5:
            self.quality = max(MIN_QUALITY, self.quality - 10)
        elif queueing < 0.05:
            self.quality = min(MAX_QUALITY, self.quality + 5)
