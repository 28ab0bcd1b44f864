#!/usr/bin/env python3
"""Proves that with_server.py's watchdog replaces a wedged engine, without wedging one (a real
wedge cannot be provoked on demand): it appends the line a wedged engine writes -- a panic in
the wgpu poll thread (PROTOCOL-0.5.md §9.1) -- to the running server's log, then expects the
harness to report a restart (PIE05_RESTARTS_FILE) and the same PIE05_URL to answer a ping from
the fresh server. Run it through with_server.sh; standard library only.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawws  # noqa: E402


def restarts(path):
    with open(path) as f:
        return f.read().splitlines()


def main():
    for name in ("PIE05_URL", "PIE05_SERVER_LOG", "PIE05_RESTARTS_FILE", "PIE05_SERVER_PID"):
        if not os.environ.get(name):
            sys.exit(f"{name} is not set: run this through scripts/pie05/with_server.sh")
    restarts_file = os.environ["PIE05_RESTARTS_FILE"]
    before = restarts(restarts_file)
    with open(os.environ["PIE05_SERVER_LOG"], "a") as log:
        log.write("thread 'wgpu poll' panicked at watchdog_selftest.py: injected by libpie's "
                  "watchdog self-test, not a real panic\n")
    started = time.monotonic()
    deadline = started + float(os.environ.get("PIE05_BOOT_TIMEOUT", 240)) + 60
    while len(restarts(restarts_file)) == len(before):
        if time.monotonic() > deadline:
            print("FAIL watchdog_selftest: the harness did not restart the server")
            return 1
        time.sleep(0.5)
    new_pid = restarts(restarts_file)[-1].split()[0]
    if new_pid == os.environ["PIE05_SERVER_PID"]:
        print("FAIL watchdog_selftest: the restart reported the old server's pid")
        return 1
    conn = rawws.Connection(os.environ["PIE05_URL"], identity="libpie/selftest", timeout=30)
    reply = conn.call({"type": "ping"}, 30)
    conn.close()
    if reply.get("result") != "Pong":
        print(f"FAIL watchdog_selftest: ping after the restart answered {reply!r}")
        return 1
    print(f"PASS watchdog_selftest: server replaced in {time.monotonic() - started:.1f} s "
          f"(pid {os.environ['PIE05_SERVER_PID']} -> {new_pid}); the same URL answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
