#!/usr/bin/env python3
"""A burst of call starts against a running `callbook serve`, timed from a
client nobody on the project wrote: the `websockets` library.

Each call connects, sends Twilio's `connected` and `start`, then `booking`
`offer` at once, and the time from sending the offer to the first `say` is
taken. Calls start at `--rate` a second and stay open until every call has
had its `say`, as live calls do. Prints one JSON line: the figures in
milliseconds.

    python3 -m venv .venv && .venv/bin/pip install websockets==15.0.1
    callbook serve --emulator --listen 127.0.0.1:8080 --auth-token TOKEN \
        --max-connections 100000 --max-connections-per-client 100000 &
    .venv/bin/python tools/burst.py --url ws://127.0.0.1:8080/v1/calls \
        --token TOKEN --calls 1000 --rate 1000
"""

import argparse
import asyncio
import json
import time

import websockets


def start_frame(i: int, tag: str) -> str:
    sid = f"CA{tag}{i:030x}"
    stream = f"MZ{tag}{i:030x}"
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream,
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": stream,
                "callSid": sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {
                    "campaign_id": "demo",
                    "recipient_phone": f"+1415555{i % 10000:04d}",
                    "recipient_first_name": "Caller",
                },
            },
        }
    )


async def one_call(url, token, i, tag, all_started, waits):
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**20
    ) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(start_frame(i, tag))
        offered = time.perf_counter()
        await ws.send(json.dumps({"event": "booking", "booking": {"action": "offer"}}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame.get("event") == "say":
                waits.append(time.perf_counter() - offered)
                break
        await all_started.wait()


def pct(sorted_ms, p):
    return round(sorted_ms[min(len(sorted_ms) - 1, int(p * len(sorted_ms)))], 3)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1000)
    args = ap.parse_args()
    tag = f"{int(time.time()) % 256:02x}"
    waits, tasks = [], []
    all_started = asyncio.Event()
    began = time.perf_counter()
    for i in range(args.calls):
        due = began + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_call(args.url, args.token, i, tag, all_started, waits)))
    elapsed = time.perf_counter() - began
    all_started.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    ms = sorted(w * 1e3 for w in waits)
    print(
        json.dumps(
            {
                "client": f"websockets {websockets.__version__}",
                "calls": args.calls,
                "rate_per_s": args.rate,
                "starts_took_s": round(elapsed, 3),
                "failed": len(failed),
                "first_say_p50_ms": pct(ms, 0.5),
                "first_say_p99_ms": pct(ms, 0.99),
                "first_say_max_ms": round(ms[-1], 3) if ms else None,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
