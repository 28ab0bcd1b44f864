#!/usr/bin/env python3
"""bench05: libpie against the Python clients on the same real pie-server 0.5.2, in one run.

usage (through bench05.sh, which provides the server):
    bench05.py [--quick] [--libpie COMMAND] [--libpie-core COMMAND] [--floor COMMAND] [--no-pin]
               [--json FILE]

Clients, each in its own process, one after the other against the same server:
  raw         rawws.py: blocking socket, own WebSocket framing, msgpack C codec
  pie-client  the Python pie-client 0.5.3 (asyncio + websockets)
  libpie      COMMAND (run with --url URL --pings N --events N --launches N appended) prints the
              same JSON object as bench05_client.py; without --libpie that column is "n/a"
              (bench05.sh passes benches/bench05_client.rs --c-api: the C ABI, as a C host calls it)
  libpie-core optional (--libpie-core COMMAND): the same for the Rust core (bench05.sh passes
              bench05_client.rs without --c-api); reported, the targets are checked on libpie
  floor       optional (--floor COMMAND, bench05.sh passes bench05_client.rs): the ping floors, the
  floor-thread  smallest clients there are (--ping-floor: the calling thread writes and reads;
              --ping-floor-threaded: a network thread reads and wakes the caller); reported only
Measurements: ping round trip (median, p99) and client CPU per ping; stdout events/s from one
stream-lines process with n = 100,000 (timed from the launch call to the return event) and
client CPU per event; launch -> first stdout (median of 20, timed from the launch call).
The server's own CPU per ping / per event (from /proc) is printed too: wall-clock rates are
bound by it.
Cores: on a machine with two or more, the server (every thread of it and of its child processes)
is pinned to core 0 and each client to core 1 (--no-pin: both float). Why: the server's runtime
wakes idle workers on a free core, so unpinned its CPU per event depends on how much CPU the
*client* leaves free — a client that uses less CPU makes the server slower (measured on 2 cores:
server 67 µs per event behind an efficient client against 29 µs behind pie-client, which keeps
the second core busy). Pinned, every client meets the same server. Targets (issue 12): libpie events/s and ping within 3 % of the best Python client;
libpie client CPU per event <= 1/10 of pie-client's, per ping <= 1/5. Prints PASS/MISS each.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rawws  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds():
    """CPU time (user + system, all threads) of the server process, from /proc."""
    pid = os.environ.get("PIE05_SERVER_PID")
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def install_stream_lines(url):
    from blake3 import blake3

    folder = os.environ.get("PIE05_INFERLETS", os.path.join(ROOT, "tests", "inferlets05"))
    source = open(os.path.join(folder, "stream_lines.py"), "rb").read()
    manifest = open(os.path.join(folder, "stream_lines.toml")).read()
    conn = rawws.Connection(url, identity="libpie/bench05", timeout=30)
    reply = conn.call({"type": "add_program", "program_hash": blake3(source).hexdigest(), "manifest": manifest,
                       "force_overwrite": True, "chunk_index": 0, "total_chunks": 1, "chunk_data": source}, 60)
    if not reply["ok"]:
        sys.exit(f"installing stream-lines failed: {reply['result']}")
    # The first launch after boot compiles the python component; keep that out of the figures.
    reply = conn.call({"type": "launch_process", "inferlet": "stream-lines@0.1.0", "input": '{"n": 1}',
                       "capture_outputs": True}, 180)
    while conn.recv(180).get("event") not in ("return", "error"):
        pass
    conn.close()


def server_tasks(root_pid):
    """Thread ids of the server process and of every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    pids, tids = [root_pid], []
    while pids:
        pid = pids.pop()
        pids += children.get(pid, [])
        try:
            tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            pass
    return tids


def pin_server(cpu):
    pid = os.environ.get("PIE05_SERVER_PID")
    if not pid:
        sys.exit("PIE05_SERVER_PID is not set: cannot pin the server (use --no-pin)")
    for tid in server_tasks(int(pid)):
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:
            pass  # a thread that ended meanwhile


def run_client(name, command, url, sizes, cpu=None):
    argv = command + ["--url", url, "--pings", str(sizes["pings"]), "--events", str(sizes["events"]),
                      "--launches", str(sizes["launches"])]
    server_before = server_cpu_seconds()
    started = time.monotonic()
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, preexec_fn=pin)
    server_after = server_cpu_seconds()
    if done.returncode != 0:
        print(f"{name}: failed (status {done.returncode})\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.monotonic() - started
    if server_before is not None and server_after is not None:
        result["server_cpu_s"] = server_after - server_before
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument("--libpie", default=os.environ.get("PIE05_BENCH_LIBPIE"),
                        help="command of libpie's bench client (see the docstring)")
    parser.add_argument("--libpie-core", default=os.environ.get("PIE05_BENCH_LIBPIE_CORE"),
                        help="command of a second libpie client (the Rust core), reported only")
    parser.add_argument("--floor", default=os.environ.get("PIE05_BENCH_FLOOR"),
                        help="command of bench05_client.rs: adds the ping floors, reported only")
    parser.add_argument("--json", help="also write all figures to this file")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the server and the clients on every core (see the docstring)")
    args = parser.parse_args()
    url = os.environ.get("PIE05_URL")
    if not url:
        sys.exit("PIE05_URL is not set: run bench05.sh")
    sizes = ({"pings": 200, "events": 10_000, "launches": 5} if args.quick
             else {"pings": 2000, "events": 100_000, "launches": 20})

    install_stream_lines(url)
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    client_cpu = None
    if pinned:
        server_cpu, client_cpu = sorted(os.sched_getaffinity(0))[:2]
        pin_server(server_cpu)
        print(f"bench05: server pinned to core {server_cpu}, clients to core {client_cpu}", file=sys.stderr)
    me = [sys.executable, os.path.join(HERE, "bench05_client.py")]
    clients = [("raw", me + ["--client", "raw"]), ("pie-client", me + ["--client", "pie-client"])]
    if args.libpie:
        clients.append(("libpie", shlex.split(args.libpie)))
    if args.libpie_core:
        clients.append(("libpie-core", shlex.split(args.libpie_core)))
    if args.floor:
        clients.append(("floor", shlex.split(args.floor) + ["--ping-floor"]))
        clients.append(("floor-thread", shlex.split(args.floor) + ["--ping-floor-threaded"]))
    results = {}
    for name, command in clients:
        print(f"bench05: running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_client(name, command, url, sizes, client_cpu)

    print(f"cores: server on core {server_cpu}, each client on core {client_cpu}" if pinned
          else "cores: not pinned (server and clients float over every core)")
    report(results, sizes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"sizes": sizes, "pinned": pinned, "results": results}, f, indent=1)
    return 0 if all(results.values()) else 1


def report(results, sizes):
    names = list(results)
    rows = [("ping median (µs)", "ping_median_us", "{:.0f}"), ("ping p99 (µs)", "ping_p99_us", "{:.0f}"),
            ("client CPU per ping (µs)", "ping_cpu_us", "{:.1f}"),
            (f"stdout events/s (n={sizes['events']:,})", "events_per_s", "{:,.0f}"),
            ("client CPU per event (µs)", "event_cpu_us", "{:.2f}"),
            (f"launch -> first stdout, median of {sizes['launches']} (ms)", "first_output_median_ms", "{:.1f}")]
    width = max(len(r[0]) for r in rows) + 2
    print("".ljust(width) + "".join(n.rjust(14) for n in names))
    for label, key, fmt in rows:
        cells = []
        for n in names:
            r = results[n]
            cells.append((fmt.format(r[key]) if r and key in r else "n/a").rjust(14))
        print(label.ljust(width) + "".join(cells))
    for n in names:
        r = results[n]
        if r and "server_cpu_s" in r:
            per = r["server_cpu_s"] / (r["pings"] + r.get("events", 0) + 50) * 1e6
            print(f"server CPU during the {n} run: {r['server_cpu_s']:.1f} s (≈ {per:.1f} µs per ping or event)")

    python = [results[n] for n in ("raw", "pie-client") if results.get(n)]
    pie_client, libpie = results.get("pie-client"), results.get("libpie")
    print()
    if not python:
        print("no Python client finished: no targets evaluated")
        return
    best_rate = max(r["events_per_s"] for r in python)
    best_ping = min(r["ping_median_us"] for r in python)
    targets = [
        ("events/s within 3 % of the best Python client", lambda l: l["events_per_s"] >= 0.97 * best_rate,
         f">= {0.97 * best_rate:,.0f}/s"),
        ("ping median within 3 % of the best Python client", lambda l: l["ping_median_us"] <= 1.03 * best_ping,
         f"<= {1.03 * best_ping:.0f} µs"),
    ]
    if pie_client:
        targets += [
            ("client CPU per event <= 1/10 of pie-client's", lambda l: l["event_cpu_us"] <= pie_client["event_cpu_us"] / 10,
             f"<= {pie_client['event_cpu_us'] / 10:.2f} µs"),
            ("client CPU per ping <= 1/5 of pie-client's", lambda l: l["ping_cpu_us"] <= pie_client["ping_cpu_us"] / 5,
             f"<= {pie_client['ping_cpu_us'] / 5:.1f} µs"),
        ]
    for label, ok, bound in targets:
        verdict = "n/a (no libpie figures)" if not libpie else ("PASS" if ok(libpie) else "MISS")
        print(f"{verdict:>5}  {label} ({bound})")
    floor, threaded = results.get("floor"), results.get("floor-thread")
    if floor and threaded:
        print(f"ping floors: {floor['ping_cpu_us']:.1f} µs of client CPU per ping when the calling thread "
              f"reads the socket, {threaded['ping_cpu_us']:.1f} µs with a network thread that reads and "
              f"wakes the caller (libpie's shape)")


if __name__ == "__main__":
    sys.exit(main())
