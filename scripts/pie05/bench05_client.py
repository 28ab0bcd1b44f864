#!/usr/bin/env python3
"""One Python client's side of bench05: measures ping, stdout streaming and launch -> first
output against a real pie-server 0.5.2, then prints one JSON object on stdout.

usage: bench05_client.py --client pie-client|raw --url URL [--pings N] [--events N] [--launches N]

Each client runs in its own process so that its CPU time (getrusage: user + system, all threads)
is its own. `pie-client` is the Python pie-client 0.5.3 (asyncio + websockets); `raw` is
rawws.py: a blocking socket, hand-written WebSocket framing and the msgpack C codec.
The program `stream-lines@0.1.0` must be installed (bench05.py does it).
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

STREAM = "stream-lines@0.1.0"


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Measure:
    """Collects the figures in one shape for both clients."""

    def __init__(self):
        self.result = {}

    def pings(self, rtts_s, cpu_s):
        self.result.update(ping_median_us=statistics.median(rtts_s) * 1e6,
                           ping_p99_us=percentile(rtts_s, 0.99) * 1e6,
                           ping_cpu_us=cpu_s / len(rtts_s) * 1e6, pings=len(rtts_s))

    def stream(self, events, wall_s, cpu_s):
        self.result.update(events=events, events_per_s=events / wall_s,
                           event_cpu_us=cpu_s / events * 1e6)

    def launches(self, firsts_s):
        self.result.update(first_output_median_ms=statistics.median(firsts_s) * 1e3,
                           first_output_p90_ms=percentile(firsts_s, 0.9) * 1e3, launches=len(firsts_s))


# ------------------------------------------------------------------------------ pie-client
async def bench_pie_client(args, measure):
    from pie_client import Event, PieClient

    async with PieClient(args.url, identity="libpie/bench05") as client:
        for _ in range(50):
            await client.ping()
        rtts = []
        cpu = cpu_seconds()
        for _ in range(args.pings):
            start = time.perf_counter()
            await client.ping()
            rtts.append(time.perf_counter() - start)
        measure.pings(rtts, cpu_seconds() - cpu)

        cpu, start = cpu_seconds(), time.perf_counter()
        process = await client.launch_process(STREAM, input={"n": args.events})
        events = 0
        while True:
            event, _ = await process.recv()
            if event == Event.Stdout:
                events += 1
            elif event in (Event.Return, Event.Error):
                break
        measure.stream(events, time.perf_counter() - start, cpu_seconds() - cpu)

        firsts = []
        for _ in range(args.launches):
            start = time.perf_counter()
            process = await client.launch_process(STREAM, input={"n": 1})
            event, _ = await process.recv()
            firsts.append(time.perf_counter() - start)
            while event not in (Event.Return, Event.Error):
                event, _ = await process.recv()
        measure.launches(firsts)


# ------------------------------------------------------------------------------------- raw
def bench_raw(args, measure):
    import rawws

    conn = rawws.Connection(args.url, identity="libpie/bench05", timeout=30)
    for _ in range(50):
        conn.call({"type": "ping"}, 30)
    rtts = []
    cpu = cpu_seconds()
    for _ in range(args.pings):
        start = time.perf_counter()
        conn.call({"type": "ping"}, 30)
        rtts.append(time.perf_counter() - start)
    measure.pings(rtts, cpu_seconds() - cpu)

    def launch(n):
        reply = conn.call({"type": "launch_process", "inferlet": STREAM, "input": json.dumps({"n": n}),
                           "capture_outputs": True}, 60)
        if not reply["ok"]:
            raise RuntimeError(reply["result"])
        return reply["result"]

    cpu, start = cpu_seconds(), time.perf_counter()
    launch(args.events)
    events = 0
    while True:
        # One process at a time on this connection: no need to route by process_id.
        message = conn.recv(120)
        kind = message.get("event")
        if kind == "stdout":
            events += 1
        elif kind in ("return", "error"):
            break
    measure.stream(events, time.perf_counter() - start, cpu_seconds() - cpu)

    firsts = []
    for _ in range(args.launches):
        start = time.perf_counter()
        launch(1)
        message = conn.recv(60)
        firsts.append(time.perf_counter() - start)
        while message.get("event") not in ("return", "error"):
            message = conn.recv(60)
    measure.launches(firsts)
    conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("pie-client", "raw"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--launches", type=int, default=20)
    args = parser.parse_args()
    measure = Measure()
    if args.client == "pie-client":
        asyncio.run(bench_pie_client(args, measure))
    else:
        bench_raw(args, measure)
    print(json.dumps(dict(measure.result, client=args.client)))


if __name__ == "__main__":
    main()
