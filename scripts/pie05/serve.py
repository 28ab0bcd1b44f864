#!/usr/bin/env python3
"""Boot a real pie-server 0.5.2 for libpie's tests: wgpu engine on lavapipe (CPU), the model from
install.sh, the python language component. Run it through start.sh (it picks the venv).

Prints exactly one line on stdout, `READY ws://127.0.0.1:PORT/v1/ws`, once the server accepts
TCP connections; everything else goes to stderr. Then serves until SIGTERM/SIGINT (or until its
parent dies: the kernel sends SIGTERM then), shuts the engine down and exits 0.

Every wait is bounded, because the engine can wedge (PROTOCOL-0.5.md §9.1: its shutdown then
never returns): a boot that does not finish in --boot-timeout seconds exits 3; a shutdown that
does not finish in --shutdown-timeout seconds is abandoned with a hard exit 4; an engine that
stops by itself exits 5.
"""
import argparse
import ctypes
import os
import shutil
import signal
import socket
import sys
import threading
import time

# Sized for a CPU-only machine: a small KV cache and few concurrent requests keep the resident
# set near 3 GB and the lavapipe work per step small.
ENGINE_OPTIONS = {
    "device_memory": '"4GiB"',
    "max_total_pages": "64",
    "max_state_slots": "4",
    "max_forward_tokens": "256",
    "max_forward_requests": "4",
}


def log(message):
    print(f"[pie05 serve {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def hard_exit(code, message):
    log(message)
    sys.stderr.flush()
    os._exit(code)


def die_with_parent():
    """Ask Linux to send SIGTERM when the process that started us goes away, so a killed test
    harness never leaves a 3 GB server behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def toml_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_toml(host, port, model_dir, verbose):
    lines = ["[server]", f"host = {toml_string(host)}", f"port = {port}"]
    if verbose:
        lines.append("verbose = true")
    lines += ["", "[model]", 'name = "default"', f"model = {toml_string(model_dir)}",
              "", "[engine]", 'type = "wgpu"', 'device = ["0"]']
    lines += [f"{key} = {value}" for key, value in ENGINE_OPTIONS.items()]
    return "\n".join(lines) + "\n"


class TimedOut(Exception):
    pass


def run_bounded(what, fn, timeout):
    """Run fn() on a daemon thread and return its result; raise TimedOut if it did not finish in
    time (the thread is abandoned: the caller exits hard next)."""
    box = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as error:  # reported to the caller below
            box["error"] = error

    worker = threading.Thread(target=body, name=what, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimedOut(what)
    if "error" in box:
        raise box["error"]
    return box["value"]


def wait_for_tcp(host, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main():
    cache = os.environ.get("PIE05_CACHE", os.path.expanduser("~/.cache/libpie/pie05"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--model", default=os.path.join(cache, "model"))
    parser.add_argument("--server-home", default=os.path.join(cache, "server-home"),
                        help="HOME of the server: installed programs and its compile cache")
    parser.add_argument("--keep-programs", action="store_true",
                        help="keep programs installed by earlier runs (default: start with none)")
    parser.add_argument("--boot-timeout", type=float, default=180.0)
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    die_with_parent()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    if not os.path.isfile(os.path.join(args.model, "config.json")):
        hard_exit(2, f"no model in {args.model}: run scripts/pie05/install.sh first")
    # pie-server keeps state in $HOME/.pie: inferlets/ (installed programs, persistent) and
    # cache/ (compiled components; keeping it saves ~17 s on the first python launch).
    os.makedirs(args.server_home, exist_ok=True)
    os.environ["HOME"] = args.server_home
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    if not args.keep_programs:
        shutil.rmtree(os.path.join(args.server_home, ".pie", "inferlets"), ignore_errors=True)

    from pie import _engine
    import pie_language_python

    started = time.monotonic()
    config = server_toml(args.host, args.port, args.model, args.verbose)
    try:
        handle = run_bounded("boot", lambda: _engine.bootstrap(config), args.boot_timeout)
    except TimedOut:
        hard_exit(3, f"engine boot did not finish in {args.boot_timeout:.0f} s")
    log(f"engine booted in {time.monotonic() - started:.1f} s at {handle.url}")

    code = 0
    try:
        try:
            run_bounded("language", lambda: handle.install_language("python", pie_language_python.read()),
                        args.boot_timeout)
        except TimedOut:
            hard_exit(3, "installing the python language component did not finish")
        host, port = handle.url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
        if not wait_for_tcp(host, int(port), 30):
            hard_exit(3, f"server at {handle.url} does not accept connections")
        log(f"ready after {time.monotonic() - started:.1f} s")
        print(f"READY ws://{host}:{port}/v1/ws", flush=True)
        while not stop.wait(0.5):
            if not handle.is_running():
                log("engine stopped by itself")
                code = 5
                break
    finally:
        log("shutting down")
        begun = time.monotonic()
        try:
            run_bounded("shutdown", handle.shutdown, args.shutdown_timeout)
        except TimedOut:
            hard_exit(4, f"engine shutdown did not finish in {args.shutdown_timeout:.0f} s (wedged); exiting hard")
        log(f"shut down in {time.monotonic() - begun:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
