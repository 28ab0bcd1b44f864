#!/usr/bin/env python3
"""End-to-end check of the real pie-server 0.5.2 set-up itself, with the raw client (rawws.py):
every test inferlet of tests/inferlets05 installed and run as the libpie tests use them, and a
text generation through the built-in compat-openai (which proves that the generated model loads
and the wgpu engine produces tokens). Runs where the shared conformance suite is absent too.

usage: smoke05.py [--url URL] [--inferlets DIR] [--tokens N]   (defaults: $PIE05_URL, $PIE05_INFERLETS)
Prints one line per scenario and `N passed, M failed`; exit 1 on any failure.
"""
import argparse
import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawws  # noqa: E402

try:
    from blake3 import blake3  # in the install.sh venv (a pie-server dependency)
except ImportError:
    blake3 = None

CHUNK = 256 * 1024


class Failed(Exception):
    pass


def ensure(condition, what, got):
    if not condition:
        raise Failed(f"expected {what}; got {got!r}"[:600])


def manifest_id(manifest):
    name = re.search(r'^name\s*=\s*"([^"]+)"', manifest, re.M).group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', manifest, re.M).group(1)
    return f"{name}@{version}"


class Session:
    def __init__(self, url):
        self.conn = rawws.Connection(url, identity="libpie/smoke05", timeout=30)
        self.pending = []  # events read while waiting for something else

    def call(self, message, timeout=30):
        corr_id = self.conn.request(message)
        deadline = time.monotonic() + timeout
        while True:
            item = self.conn.recv(max(0.0, deadline - time.monotonic()))
            if item.get("type") == "response" and item.get("corr_id") == corr_id:
                return item
            self.pending.append(item)

    def next_event(self, process_id, timeout):
        for i, item in enumerate(self.pending):
            if item.get("process_id") == process_id:
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            item = self.conn.recv(max(0.0, deadline - time.monotonic()))
            if item.get("process_id") == process_id:
                return item
            self.pending.append(item)

    def until_end(self, process_id, timeout):
        """All events of the process up to and including `return`/`error`."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.next_event(process_id, max(0.0, deadline - time.monotonic()))
            events.append(event)
            if event.get("type") == "process_event" and event["event"] in ("return", "error"):
                return events

    def launch(self, inferlet, arguments, attached=True, timeout=120):
        reply = self.call({"type": "launch_process", "inferlet": inferlet, "input": json.dumps(arguments),
                           "capture_outputs": attached}, timeout)
        ensure(reply["ok"], f"launch of {inferlet} accepted", reply)
        return reply["result"]

    def close(self):
        self.conn.close()


def stdout_of(events):
    return "".join(e["value"] for e in events if e.get("event") == "stdout")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("PIE05_URL"))
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--inferlets", default=os.environ.get(
        "PIE05_INFERLETS", os.path.join(here, "..", "..", "tests", "inferlets05")))
    parser.add_argument("--tokens", type=int, default=3)
    parser.add_argument("--generation-timeout", type=float, default=240)
    args = parser.parse_args()
    if not args.url:
        parser.error("no --url and no PIE05_URL (run it through with_server.sh)")

    installed = {}
    results = []

    def scenario(fn):
        started = time.monotonic()
        session = Session(args.url)
        try:
            fn(session)
            results.append(True)
            print(f"PASS {fn.__name__} ({time.monotonic() - started:.1f}s)", flush=True)
        except (Failed, OSError, TimeoutError, ConnectionError, rawws.ProtocolError, KeyError) as error:
            results.append(False)
            print(f"FAIL {fn.__name__}: {type(error).__name__}: {error}", flush=True)
        finally:
            session.close()

    def install_all(s):
        for entry in sorted(os.listdir(args.inferlets)):
            if not entry.endswith(".toml"):
                continue
            manifest = open(os.path.join(args.inferlets, entry)).read()
            source = open(os.path.join(args.inferlets, entry[:-5] + ".py"), "rb").read()
            ensure(blake3 is not None, "the blake3 module (run with the install.sh venv)", None)
            digest = blake3(source).hexdigest()
            chunks = [source[i:i + CHUNK] for i in range(0, len(source), CHUNK)] or [b""]
            for index, chunk in enumerate(chunks):
                message = {"type": "add_program", "program_hash": digest, "manifest": manifest,
                           "force_overwrite": True, "chunk_index": index, "total_chunks": len(chunks),
                           "chunk_data": chunk}
                if index + 1 < len(chunks):
                    s.conn.send(dict(message, corr_id=999))
                else:
                    reply = s.call(message, 60)
            ensure(reply["ok"], f"{entry} installed", reply)
            ident = manifest_id(manifest)
            name, version = ident.split("@")
            check = s.call({"type": "check_program", "name": name, "version": version})
            ensure(check["result"] == "true", f"{ident} known after install", check)
            installed[entry[:-5]] = ident
        ensure(len(installed) >= 6, "six test inferlets", sorted(installed))

    def echo_args(s):
        # The first launch after boot compiles the python component (about 17 s on 2 cores).
        pid = s.launch(installed["echo_args"], {"x": 1, "y": "two"}, timeout=180)
        events = s.until_end(pid, 180)
        ensure(stdout_of(events) == 'args: {"x": 1, "y": "two"}\n', "the printed arguments", events)
        ensure(events[-1]["event"] == "return" and json.loads(events[-1]["value"]) == {"x": 1, "y": "two"},
               "the arguments returned", events[-1])

    def fail(s):
        pid = s.launch(installed["fail"], {"message": "on purpose"})
        events = s.until_end(pid, 60)
        ensure(events[-1]["event"] == "error" and events[-1]["value"].startswith("RuntimeError: on purpose"),
               "error event RuntimeError: on purpose", events[-1])

    def stream_lines(s):
        pid = s.launch(installed["stream_lines"], {"n": 1000})
        events = s.until_end(pid, 60)
        ensure(stdout_of(events) == "".join(f"line {i}\n" for i in range(1000)), "1000 lines in order",
               stdout_of(events)[:200])
        ensure(events[-1]["value"] == "1000", "return 1000", events[-1])

    def chat(s):
        pid = s.launch(installed["chat_echo"], {"greeting": "hello there"})
        ensure(s.next_event(pid, 60).get("value") == "hello there", "the greeting", None)
        for text in ("one", "two", "three"):
            s.conn.send({"type": "signal_process", "process_id": pid, "message": text})
            event = s.next_event(pid, 30)
            ensure(event.get("value") == f"echo: {text}", f"echo: {text}", event)
        s.conn.send({"type": "signal_process", "process_id": pid, "message": "quit"})
        event = s.next_event(pid, 30)
        ensure(event.get("event") == "return" and json.loads(event["value"]) == {"echoed": 3},
               'return {"echoed": 3}', event)

    def files_both_ways(s):
        pid = s.launch(installed["file_echo"], {})
        ensure(s.next_event(pid, 60).get("value") == "send me a file", "the ready message", None)
        time.sleep(0.5)  # the inferlet must be inside receive_file() (PROTOCOL-0.5.md §5.9)
        data = os.urandom(600 * 1024)  # three chunks
        digest = blake3(data).hexdigest()
        for index in range(0, 3):
            s.conn.send({"type": "transfer_file", "process_id": pid, "file_hash": digest,
                         "chunk_index": index, "total_chunks": 3, "chunk_data": data[index * CHUNK:(index + 1) * CHUNK]})
        events = s.until_end(pid, 120)
        frames = [e for e in events if e.get("type") == "file"]
        echoed = b"".join(f["chunk_data"] for f in sorted(frames, key=lambda f: f["chunk_index"]))
        ensure(echoed == data and frames and frames[0]["file_hash"] == digest, "the same bytes back",
               [(f["chunk_index"], f["total_chunks"], len(f["chunk_data"])) for f in frames])
        ensure(events[-1]["value"] == str(len(data)), "return of the length", events[-1])

    def detached_list_attach_terminate(s):
        ident = installed["sleeper"]
        # A unique duration identifies our process in the list (the input text is listed verbatim).
        launch_input = json.dumps({"seconds": 120 + uuid.uuid4().int % 10**6 / 10**7})
        reply = s.call({"type": "launch_process", "inferlet": ident, "input": launch_input,
                        "capture_outputs": False})
        ensure(reply["ok"] and reply["result"] == "", "detached launch: ok with no id (0.5.2)", reply)
        deadline = time.monotonic() + 30
        while True:
            rows = json.loads(s.call({"type": "list_processes"})["result"])
            mine = [r for r in rows if r["program"] == ident and r["input"] == launch_input]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ensure(len(mine) == 1, "the detached sleeper listed once", rows)
        pid = mine[0]["id"]
        reply = s.call({"type": "attach_process", "process_id": pid})
        ensure(reply["result"] == "Process attached", "attach", reply)
        reply = s.call({"type": "terminate_process", "process_id": pid})
        ensure(reply["result"] == "Process terminated", "terminate", reply)
        event = s.next_event(pid, 30)
        ensure(event.get("event") == "error" and event.get("value") == "Signal", "error Signal", event)

    def generation(s):
        pid = s.launch("compat-openai@0.1.0", {"prompt": "Hello", "max_tokens": args.tokens, "stream": True})
        events = s.until_end(pid, args.generation_timeout)
        chunks = [json.loads(e["value"])["data"] for e in events if e.get("event") == "message"]
        ensure(chunks and chunks[-1] == "[DONE]", "streamed chunks ending with [DONE]", chunks)
        texts = [c["choices"][0].get("text", "") for c in chunks[:-1]]
        ensure(len(texts) >= 1, "at least one token chunk", chunks)
        ensure(events[-1]["event"] == "return", "return", events[-1])
        print(f"  generation: {len(texts)} chunks, text {''.join(texts)!r}", flush=True)

    for fn in (install_all, echo_args, fail, stream_lines, chat, files_both_ways,
               detached_list_attach_terminate, generation):
        scenario(fn)
        if fn is install_all and not results[-1]:
            break
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and len(results) == 8 else 1


if __name__ == "__main__":
    sys.exit(main())
