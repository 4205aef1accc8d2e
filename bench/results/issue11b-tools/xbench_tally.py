"""xbench + a tally of what the Staffroom page received per workload (message type/format)."""
from __future__ import annotations
import asyncio, base64, collections, json, sys
sys.argv = sys.argv  # noqa
import xbench  # noqa: F401  (registers the xterm workloads and the client fix)
from bench import measure, workloads as W, run
from gateway.wire import display as wire

ACTIVE = {"name": None}
TALLY: dict = collections.defaultdict(lambda: collections.Counter())
DEC = {}

_orig = measure.WebSocketCounter._on_received
def _on_received(self, params):
    _orig(self, params)
    fr = params["response"]
    if fr.get("opcode") == 1:
        return
    dec = DEC.setdefault(id(self), wire.DisplayDecoder(wire.Direction.TO_VIEWER))
    try:
        dec.feed(base64.b64decode(fr.get("payloadData", "")))
        while not isinstance(m := dec.next_event(), wire.Sentinel):
            if ACTIVE["name"]:
                k = type(m).__name__ + (f":{m.format.name}" if isinstance(m, wire.Tile) else "")
                size = len(wire.encode(m))
                t = TALLY[ACTIVE["name"]]
                t[k + " n"] += 1
                t[k + " bytes"] += size
                if isinstance(m, wire.Tile | wire.Fill):
                    t[k + " px"] += m.w * m.h
    except Exception as e:  # noqa: BLE001
        TALLY["errors"][repr(e)[:80]] += 1
measure.WebSocketCounter._on_received = _on_received

for cls in list(W.WORKLOADS.values()):
    orig_run = cls.run
    def make(orig_run, name):
        async def run_(self, desktop, duration):
            ACTIVE["name"] = name
            try:
                return await orig_run(self, desktop, duration)
            finally:
                ACTIVE["name"] = None
        return run_
    cls.run = make(orig_run, cls.name)

if __name__ == "__main__":
    args = run.parse_args(sys.argv[1:])
    asyncio.run(run.main(args))
    out = {k: dict(v) for k, v in TALLY.items()}
    open(args.out + ".tally.json", "w").write(json.dumps(out, indent=1, sort_keys=True))
