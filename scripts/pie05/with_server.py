#!/usr/bin/env python3
"""Run a command against a real pie-server 0.5.2 that lives exactly as long as the command.

usage: with_server.py [--no-install] [--retries N] [--timeout SECONDS] [--] COMMAND [ARG...]

1. Runs install.sh (a no-op after the first time) unless --no-install.
2. Starts the server (start.sh) on a free loopback port and waits for its READY line.
3. Runs COMMAND with PIE05_URL=ws://127.0.0.1:PORT/v1/ws in its environment (also PIE05_PORT,
   PIE05_SERVER_PID, PIE05_SERVER_LOG, PIE05_INFERLETS = the repository's test inferlets, and
   PIE05_RESTARTS_FILE, which gets one line "PID LOG REASON" per finished restart).
4. Meanwhile a watchdog pings the server and queries model_status every few seconds and reads
   the server log. When the engine wedges -- a request unanswered in time, an engine panic or
   a long stall in the log, or the server process gone -- it says so on stderr (`pie05 watchdog:
   ...`), kills the server and starts a fresh one on the same port, so the command's later
   connections work again. If the command then fails, it is run again (up to --retries times,
   default 1): a failure caused by the wedge is retried once, a real failure fails twice.
5. Always stops the server at the end (SIGTERM, then SIGKILL after the shutdown timeout), also
   on Ctrl-C, SIGTERM or a command that exceeds --timeout (default 1800 s).
Exit status: the command's; 124 on its timeout; 3 when the server cannot be started.
The last line on stderr sums up: `pie05: server restarts: N (...)`.

Environment: PIE05_CACHE (see env.sh), PIE05_BOOT_TIMEOUT (default 240 s),
PIE05_WATCHDOG_INTERVAL (5 s), PIE05_WATCHDOG_TIMEOUT (30 s: an unanswered ping/model_status),
PIE05_STALL_LIMIT (150 s: a longer engine stall report in the log is a wedge),
PIE05_SHUTDOWN_TIMEOUT (10 s).
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import rawws  # noqa: E402

# Lines of the server log that mean the engine will not make progress any more
# (PROTOCOL-0.5.md §9.1: a panic in the wgpu poll thread).
WEDGE_PATTERNS = re.compile(r"panicked at|device lost|DeviceLost", re.IGNORECASE)
# The scheduler reports "engine 0 stalled for 10.08s (no progress, ...)" every few seconds while
# a batch is unfinished. On lavapipe under load the first batches routinely take 10-40 s, so
# only a stall longer than PIE05_STALL_LIMIT (default 150 s) counts as a wedge (observed wedges
# never recovered: one went on for 550 s without settling).
STALL_REPORT = re.compile(r"engine \d+ stalled for ([0-9.]+)s")


def say(message):
    print(f"pie05: {message}", file=sys.stderr, flush=True)


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return float(default)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One pie-server process started by start.sh, its log file and its READY URL."""

    def __init__(self, port, log_dir, boot_timeout):
        self.port = port
        self.url = None
        self.boot_seconds = None
        self.log_path = os.path.join(log_dir, f"server-{time.strftime('%Y%m%d-%H%M%S')}-{port}.log")
        self.log = open(self.log_path, "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            ["bash", os.path.join(HERE, "start.sh"), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        ready = threading.Event()

        def read_stdout():
            for raw in self.process.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith("READY "):
                    self.url = line.split(" ", 1)[1]
                    ready.set()
            ready.set()  # stdout closed: the server is gone

        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(boot_timeout) or self.url is None:
            self.stop(5)
            raise RuntimeError(f"server did not print READY within {boot_timeout:.0f} s "
                               f"(exit status {self.process.poll()}); log: {self.log_path}")
        self.boot_seconds = time.monotonic() - started

    def alive(self):
        return self.process.poll() is None

    def rss_kib(self):
        """Resident set of the server (the python process that hosts the engine)."""
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS", "VmHWM")):
                        yield line.split(":")[0], int(line.split()[1])
        except OSError:
            return

    def stop(self, grace):
        """SIGTERM to the server's process group; SIGKILL if it has not exited after `grace`."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                say(f"server did not stop within {grace:.0f} s of SIGTERM; killing it")
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(10)
        self.log.close()


class Watchdog(threading.Thread):
    """Notices a wedged or dead engine and replaces the server with a fresh one."""

    def __init__(self, harness):
        super().__init__(daemon=True)
        self.harness = harness
        self.interval = env_float("PIE05_WATCHDOG_INTERVAL", 5)
        self.timeout = env_float("PIE05_WATCHDOG_TIMEOUT", 30)
        self.stall_limit = env_float("PIE05_STALL_LIMIT", 150)
        self.quit = threading.Event()
        self.log_offset = 0

    def problem(self, server):
        """None when the server is healthy, else what is wrong with it."""
        if not server.alive():
            return f"server process exited (status {server.process.poll()})"
        try:
            with open(server.log_path, "rb") as f:
                f.seek(self.log_offset)
                fresh = f.read()
            self.log_offset += len(fresh)
            for line in fresh.decode(errors="replace").splitlines():
                stall = STALL_REPORT.search(line)
                if WEDGE_PATTERNS.search(line) or (stall and float(stall.group(1)) >= self.stall_limit):
                    return f"engine wedged, says the server log: {line.strip()[:300]}"
        except OSError:
            pass
        try:
            conn = rawws.Connection(server.url, identity="libpie/watchdog", timeout=self.timeout)
            try:
                pong = conn.call({"type": "ping"}, self.timeout)
                status = conn.call({"type": "query", "subject": "model_status", "record": ""}, self.timeout)
            finally:
                conn.close()
            if not pong.get("ok") or not status.get("ok"):
                return f"unexpected watchdog replies: {pong!r} {status!r}"
        except (OSError, TimeoutError, ConnectionError, rawws.ProtocolError) as error:
            return f"no answer to ping/model_status within {self.timeout:.0f} s ({type(error).__name__}: {error})"
        return None

    def run(self):
        while not self.quit.wait(self.interval):
            server = self.harness.server
            if server is None:
                continue
            problem = self.problem(server)
            if problem and not self.quit.is_set():
                try:
                    self.harness.restart(problem)
                except RuntimeError as error:
                    say(f"watchdog: {error}; no server any more")
                    return
                self.log_offset = 0


class Harness:
    def __init__(self, boot_timeout):
        self.boot_timeout = boot_timeout
        self.port = free_port()
        self.log_dir = os.path.join(os.environ["PIE05_CACHE"], "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.lock = threading.Lock()
        self.server = None
        self.restarts = []  # reasons
        self.restarts_file = os.path.join(self.log_dir, f"restarts-{os.getpid()}-{self.port}.txt")
        open(self.restarts_file, "w").close()

    def start(self):
        for attempt in range(3):  # the port may still be held for a moment after a kill
            try:
                self.server = Server(self.port, self.log_dir, self.boot_timeout)
                rss = dict(self.server.rss_kib())
                say(f"server ready in {self.server.boot_seconds:.1f} s at {self.server.url} "
                    f"(pid {self.server.process.pid}, RSS {rss.get('VmRSS', 0) / 1024:.0f} MiB, "
                    f"log {self.server.log_path})")
                return
            except RuntimeError as error:
                say(f"start attempt {attempt + 1} failed: {error}")
                time.sleep(2)
        raise RuntimeError("could not start pie-server")

    def restart(self, reason):
        with self.lock:
            self.restarts.append(reason)
            say(f"watchdog: {reason}")
            say(f"watchdog: restarting the server (restart #{len(self.restarts)}), same URL")
            old, self.server = self.server, None
            old.stop(env_float("PIE05_SHUTDOWN_TIMEOUT", 10))
            self.start()
            # One line per finished restart, for the command to see (PIE05_RESTARTS_FILE).
            with open(self.restarts_file, "a") as f:
                f.write(f"{self.server.process.pid} {self.server.log_path} {reason}\n")

    def stop(self):
        with self.lock:
            if self.server is not None:
                peak = dict(self.server.rss_kib()).get("VmHWM", 0)
                if peak:
                    say(f"server peak RSS {peak / 1024:.0f} MiB")
                self.server.stop(env_float("PIE05_SHUTDOWN_TIMEOUT", 10) + 5)
                self.server = None


def run_command(command, env, timeout):
    """Run the command in its own process group; kill the whole group on timeout."""
    try:
        process = subprocess.Popen(command, env=env, start_new_session=True)
    except OSError as error:
        say(f"cannot run {command[0]}: {error}")
        return 127
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"command exceeded {timeout:.0f} s; killing it")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return 124
    finally:
        if process.poll() is None:  # interrupted (Ctrl-C): do not leave it running
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main():
    parser = argparse.ArgumentParser(usage=__doc__.strip().splitlines()[2][7:])
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    if not args.no_install:
        if subprocess.call(["bash", os.path.join(HERE, "install.sh")]) != 0:
            say("install.sh failed")
            return 3
    # env.sh is the one place that knows the cache layout; take PIE05_CACHE from it.
    os.environ["PIE05_CACHE"] = subprocess.check_output(
        ["bash", "-c", f'. "{HERE}/env.sh"; printf %s "$PIE05_CACHE"']).decode()

    # SIGTERM to the harness tears everything down like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    harness = Harness(env_float("PIE05_BOOT_TIMEOUT", 240))
    watchdog = Watchdog(harness)
    status = 3
    try:
        harness.start()
        watchdog.start()
        attempts = 0
        while True:
            attempts += 1
            before = len(harness.restarts)
            env = dict(os.environ, PIE05_URL=harness.server.url, PIE05_PORT=str(harness.port),
                       PIE05_SERVER_PID=str(harness.server.process.pid),
                       PIE05_SERVER_LOG=harness.server.log_path,
                       PIE05_RESTARTS_FILE=harness.restarts_file,
                       PIE05_INFERLETS=os.path.join(ROOT, "tests", "inferlets05"))
            status = run_command(command, env, args.timeout)
            wedged_during_run = len(harness.restarts) > before
            if status == 0 or not wedged_during_run or attempts > args.retries:
                break
            say(f"command failed (status {status}) after an engine restart; running it again "
                f"(attempt {attempts + 1})")
            with harness.lock:  # a restart in progress finishes first
                pass
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except RuntimeError as error:
        say(str(error))
        status = 3
    finally:
        watchdog.quit.set()
        harness.stop()
        try:
            os.unlink(harness.restarts_file)
        except OSError:
            pass
        say(f"server restarts: {len(harness.restarts)}"
            + (" (" + "; ".join(harness.restarts) + ")" if harness.restarts else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
