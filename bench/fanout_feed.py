"""A stand-in for spaced's bus that does only what `hut-bench fanout` needs,
at as little cost per message as it can, to measure hut-bench by itself.

usage: fanout_feed.py [PORT]   (default 0: any free port)

Prints `listening on http://127.0.0.1:PORT` and serves until SIGTERM or
SIGINT. It is not a space: it checks no token and keeps nothing. It answers
the upgrade (Sec-WebSocket-Accept, the subprotocol offered), sends `welcome`,
answers `create` and `join` with `ok`, and answers each `post` with `ok` and
the room's next `seq`; the `message` events of all the posts read in one go
are written to each member in one write, so a member reads many of them per
read, as from a server that coalesces its writes per connection. A member
more than 4 MiB behind stops the posters' reading until it catches up.
Loopback only; see docs/benchmarks.md ("Measuring the client by itself").
"""
import asyncio
import base64
import hashlib
import json
import signal
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HIGH = 4 * 1024 * 1024  # a member's unsent bytes that pause the posters
LOW = 1024 * 1024  # ... and that resume them


def frame(payload):
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class Room:
    def __init__(self, name):
        self.name = name
        self.members = []
        self.seq = 0
        self.pending = []  # message frames not written yet
        self.flush_scheduled = False


class Feed:
    """The rooms and the connections; everything runs on the asyncio loop."""

    def __init__(self, loop):
        self.loop = loop
        self.rooms = {}
        self.posters = set()
        self.paused = False

    def flush(self, room):
        room.flush_scheduled = False
        if not room.pending:
            return
        data = b"".join(room.pending)
        room.pending.clear()
        behind = False
        for member in room.members:
            if not member.closed:
                member.transport.write(data)
                behind = behind or member.transport.get_write_buffer_size() > HIGH
        if behind and not self.paused:
            self.paused = True
            for p in self.posters:
                if not p.closed:
                    p.transport.pause_reading()
            self.loop.call_later(0.001, self.check, room)

    def check(self, room):
        if any(not m.closed and m.transport.get_write_buffer_size() > LOW for m in room.members):
            self.loop.call_later(0.001, self.check, room)
            return
        self.paused = False
        for p in self.posters:
            if not p.closed:
                p.transport.resume_reading()


class Conn(asyncio.Protocol):
    def __init__(self, feed):
        self.feed = feed
        self.buf = bytearray()
        self.upgraded = False
        self.closed = False
        self.transport = None
        self.user = "?"

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        self.feed.posters.discard(self)

    def data_received(self, data):
        self.buf += data
        if not self.upgraded and not self.upgrade():
            return
        buf = self.buf
        at = 0
        while len(buf) - at >= 6:
            n = buf[at + 1] & 0x7F
            h = 2
            if n == 126:
                n = int.from_bytes(buf[at + 2:at + 4], "big")
                h = 4
            elif n == 127:
                n = int.from_bytes(buf[at + 2:at + 10], "big")
                h = 10
            if len(buf) - at < h + 4 + n:
                break
            mask = bytes(buf[at + h:at + h + 4])
            body = bytes(buf[at + h + 4:at + h + 4 + n])
            opcode = buf[at] & 0x0F
            at += h + 4 + n
            key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
            payload = (int.from_bytes(body, "big") ^ key).to_bytes(n, "big")
            if opcode == 0x8:
                self.transport.write(bytes((0x88, 2)) + payload[:2])
                self.transport.close()
                return
            if opcode == 0x1:
                self.on_text(payload)
        del buf[:at]

    def upgrade(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(headers.get("sec-websocket-key", "").encode() + GUID).digest())
        answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        answer += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        if "sec-websocket-protocol" in headers:
            answer += b"Sec-WebSocket-Protocol: hutopia.v1\r\n"
        self.transport.write(answer + b"\r\n" + frame(b'{"op":"welcome","session":"feed"}'))
        self.upgraded = True
        return True

    def on_text(self, payload):
        msg = json.loads(payload)
        op = msg.get("op")
        ref = json.dumps(msg.get("ref"))
        if op == "post":
            room = self.feed.rooms.get(msg.get("room"))
            if room is None:
                self.reply_error(ref, "not_found")
                return
            self.feed.posters.add(self)
            room.seq += 1
            ts = int(time.time() * 1000)
            self.transport.write(frame(b'{"op":"ok","ref":%s,"seq":%d,"ts":%d}' % (ref.encode(), room.seq, ts)))
            event = {"op": "message", "room": room.name, "seq": room.seq, "ts": ts,
                     "from": {"id": self.user, "name": self.user}, "text": msg.get("text", "")}
            if "data" in msg:
                event["data"] = msg["data"]
            room.pending.append(frame(json.dumps(event, separators=(",", ":")).encode()))
            if not room.flush_scheduled:
                room.flush_scheduled = True
                self.feed.loop.call_soon(self.feed.flush, room)
        elif op in ("create", "join"):
            name = msg.get("room")
            room = self.feed.rooms.get(name)
            if room is None:
                room = self.feed.rooms[name] = Room(name)
            room.members.append(self)
            self.transport.write(frame(b'{"op":"ok","ref":%s,"room":%s}' % (ref.encode(), json.dumps(name).encode())))
        else:
            self.reply_error(ref, "bad_request")

    def reply_error(self, ref, code):
        self.transport.write(frame(b'{"op":"error","ref":%s,"code":"%s","message":""}' % (ref.encode(), code.encode())))


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    loop = asyncio.get_running_loop()
    feed = Feed(loop)
    server = await loop.create_server(lambda: Conn(feed), "127.0.0.1", port, backlog=4096)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
