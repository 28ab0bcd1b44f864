"""A deliberately small Pie 0.5 client: RFC 6455 WebSocket over a plain socket plus MessagePack.

Used by with_server.py's watchdog (standard library only, so it runs on the system python3)
and, as the "minimal raw Python client", by bench05.py. When the `msgpack` package is importable
(it is in the install.sh venv) its C codec is used; otherwise the small codec below.
Only what a client of pie-server 0.5.2 needs: masked client frames, unmasked server frames,
ping/pong/close control frames, maps/strings/ints/bools/bin/arrays/nil/floats.
"""
import base64
import hashlib
import os
import socket
import struct
import time
from urllib.parse import urlsplit

try:
    import msgpack as _msgpack
except ImportError:  # the system python3 of a fresh machine
    _msgpack = None


class ProtocolError(Exception):
    pass


# ------------------------------------------------------------------------------- MessagePack
def _encode(value, out):
    if value is None:
        out.append(0xC0)
    elif value is True or value is False:
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, int):
        if 0 <= value < 0x80 or -32 <= value < 0:
            out.append(value & 0xFF)  # positive / negative fixint
        elif 0 <= value <= 0xFF:
            out += b"\xcc" + struct.pack(">B", value)
        elif 0 <= value <= 0xFFFF:
            out += b"\xcd" + struct.pack(">H", value)
        elif 0 <= value <= 0xFFFFFFFF:
            out += b"\xce" + struct.pack(">I", value)
        else:
            out += b"\xd3" + struct.pack(">q", value)
    elif isinstance(value, float):
        out += b"\xcb" + struct.pack(">d", value)
    elif isinstance(value, str):
        _encode_head(out, len(value.encode()), 0xA0, 32, 0xD9)
        out += value.encode()
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _encode_head(out, len(value), None, 0, 0xC4)
        out += value
    elif isinstance(value, (list, tuple)):
        _encode_head(out, len(value), 0x90, 16, None)
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        _encode_head(out, len(value), 0x80, 16, None)
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def _encode_head(out, length, fix_base, fix_limit, first_wide):
    """Length header: the fix form when it fits, else the 8/16/32-bit form. Arrays and maps have
    no 8-bit form (first_wide None): their wide forms start at 0xdc/0xde."""
    if fix_base is not None and length < fix_limit:
        out.append(fix_base | length)
        return
    if first_wide is None:
        first_wide = 0xDC if fix_base == 0x90 else 0xDE
        forms = ((0xFFFF, first_wide, ">H"), (0xFFFFFFFF, first_wide + 1, ">I"))
    else:
        forms = ((0xFF, first_wide, ">B"), (0xFFFF, first_wide + 1, ">H"), (0xFFFFFFFF, first_wide + 2, ">I"))
    for limit, marker, fmt in forms:
        if length <= limit:
            out.append(marker)
            out += struct.pack(fmt, length)
            return
    raise ValueError("too long for MessagePack")


_FIXED = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i",
          0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
_LENGTH = {0xC4: (">B", "bin"), 0xC5: (">H", "bin"), 0xC6: (">I", "bin"),
           0xD9: (">B", "str"), 0xDA: (">H", "str"), 0xDB: (">I", "str"),
           0xDC: (">H", "array"), 0xDD: (">I", "array"), 0xDE: (">H", "map"), 0xDF: (">I", "map")}


def _decode(data, pos):
    marker = data[pos]
    pos += 1
    if marker < 0x80:
        return marker, pos
    if marker >= 0xE0:
        return marker - 0x100, pos
    if marker <= 0x8F:
        kind, length = "map", marker & 0x0F
    elif marker <= 0x9F:
        kind, length = "array", marker & 0x0F
    elif marker <= 0xBF:
        kind, length = "str", marker & 0x1F
    elif marker in (0xC0, 0xC2, 0xC3):
        return {0xC0: None, 0xC2: False, 0xC3: True}[marker], pos
    elif marker in _FIXED:
        fmt = _FIXED[marker]
        size = struct.calcsize(fmt)
        return struct.unpack_from(fmt, data, pos)[0], pos + size
    elif marker in _LENGTH:
        fmt, kind = _LENGTH[marker]
        length = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
    else:
        raise ProtocolError(f"unsupported MessagePack marker 0x{marker:02x}")
    if kind in ("str", "bin"):
        raw = bytes(data[pos:pos + length])
        if len(raw) != length:
            raise ProtocolError("truncated MessagePack")
        return (raw.decode() if kind == "str" else raw), pos + length
    if kind == "array":
        items = []
        for _ in range(length):
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos
    result = {}
    for _ in range(length):
        key, pos = _decode(data, pos)
        result[key], pos = _decode(data, pos)
    return result, pos


def pack(value):
    if _msgpack is not None:
        return _msgpack.packb(value, use_bin_type=True)
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def unpack(data):
    if _msgpack is not None:
        return _msgpack.unpackb(data, raw=False)
    value, end = _decode(data, 0)
    if end != len(data):
        raise ProtocolError("trailing bytes after MessagePack value")
    return value


# --------------------------------------------------------------------------------- WebSocket
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Connection:
    """One WebSocket connection to a Pie 0.5 server (`ws://host:port/v1/ws`)."""

    def __init__(self, url, identity="libpie/tests", timeout=10.0):
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError(f"only ws:// URLs are supported, not {url!r}")
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.next_corr_id = 1
        key = base64.b64encode(os.urandom(16))
        path = parts.path or "/v1/ws"
        request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nx-pie-identity: {identity}\r\n\r\n")
        self.sock.sendall(request.encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            self._fill(deadline)
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        self.buffer = bytearray(rest)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in status_line + " ":
            raise ProtocolError(f"upgrade refused: {status_line}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        expected = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise ProtocolError("bad Sec-WebSocket-Accept")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 18)
        except socket.timeout:
            raise TimeoutError("no data from the server in time") from None
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack(">BBH", 0x80 | opcode, 0xFE, length)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0xFF, length)
        # XOR with the repeating mask, done on whole integers rather than byte by byte.
        repeated = (mask * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(length, "little")
        self.sock.sendall(head + mask + masked)

    def send(self, message):
        """Send one message map as a binary MessagePack frame."""
        self.send_frame(OP_BINARY, pack(message))

    def request(self, message):
        """Send a request with a fresh corr_id; returns the corr_id."""
        corr_id = self.next_corr_id
        self.next_corr_id += 1
        self.send(dict(message, corr_id=corr_id))
        return corr_id

    def recv_frame(self, timeout):
        """Next data frame as (opcode, payload); answers pings; raises on close."""
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buffer) < 2:
                self._fill(deadline)
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                offset = 4
            elif length == 127:
                offset = 10
            while len(self.buffer) < offset:
                self._fill(deadline)
            if length == 126:
                length = struct.unpack_from(">H", self.buffer, 2)[0]
            elif length == 127:
                length = struct.unpack_from(">Q", self.buffer, 2)[0]
            if second & 0x80:
                raise ProtocolError("server frames must not be masked")
            while len(self.buffer) < offset + length:
                self._fill(deadline)
            payload = bytes(self.buffer[offset:offset + length])
            del self.buffer[:offset + length]
            opcode = first & 0x0F
            if not first & 0x80:
                raise ProtocolError("fragmented frames are not expected from pie-server")
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                raise ConnectionError("server sent close")
            elif opcode in (OP_TEXT, OP_BINARY):
                return opcode, payload

    def recv(self, timeout):
        """Next MessagePack message (text frames -- turn_done, error -- are skipped)."""
        while True:
            opcode, payload = self.recv_frame(timeout)
            if opcode == OP_BINARY:
                return unpack(payload)

    def call(self, message, timeout):
        """Request/response: returns the `response` map for this request."""
        corr_id = self.request(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.recv(max(0.0, deadline - time.monotonic()))
            if reply.get("type") == "response" and reply.get("corr_id") == corr_id:
                return reply

    def close(self):
        try:
            self.send_frame(OP_CLOSE, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()
