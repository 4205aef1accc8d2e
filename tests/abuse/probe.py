"""Times GET /api/v1/health every 250 ms over one kept-alive HTTPS connection, in its own
process (so the storm's client does not slow the measurement); prints the latencies as JSON.

Usage: python -m tests.abuse.probe PORT CA_FILE SECONDS
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import time


def main() -> None:
    port, ca, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        conn.request("GET", "/api/v1/health")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"health answered {response.status}")
        latencies.append(time.monotonic() - started)
        time.sleep(0.25)
    print(json.dumps(latencies))


if __name__ == "__main__":
    main()
