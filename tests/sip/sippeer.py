"""A SIP endpoint on 127.0.0.1 (UDP or TCP) that a test drives message by message.

SIPp plays whole calls; some protocol cases need an endpoint whose every
message and moment the test chooses: a callee that answers 200 while a
CANCEL crosses it, a caller that writes the Route set of a strict router.
A Peer records every datagram it receives (as sipwire.Msg) and hands each
to the test's handler, which answers with the builders below.
"""

from __future__ import annotations

import itertools
import select
import socket
import threading
import time
from typing import Callable

from sipwire import Msg, distinct, via_sent_by

HOST = "127.0.0.1"
_serial = itertools.count(1)

Handler = Callable[["Peer", Msg], None]


class Peer:
    """A UDP endpoint: one socket, replies to where the top Via says."""

    transport = "UDP"

    def __init__(self, name: str, handler: Handler | None = None, host: str = HOST):
        self.name = name
        self.handler = handler
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = self._open()
        self.port = self.sock.getsockname()[1]
        self.received: list[Msg] = []
        self.sent: list[Msg] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _open(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        sock.bind((self.host, 0))
        return sock

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        params = ";transport=tcp" if self.transport == "TCP" else ""
        return f"sip:{self.name}@{self.hostport}{params}"

    def _run(self) -> None:
        while not self._stop:
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if r:
                data, src = self.sock.recvfrom(65535)
                self._deliver(data, None, src[1])

    def _deliver(self, data: bytes, conn: socket.socket | None, src_port: int) -> None:
        msg = Msg.parse(data.decode(errors="replace"), "received", self.transport)
        msg.at = time.monotonic()
        msg.conn = conn
        msg.src_port = src_port
        with self._cond:
            self.received.append(msg)
            self._cond.notify_all()
        if self.handler:
            try:
                self.handler(self, msg)
            except Exception as e:  # reported by the test, not lost in a thread
                self.errors.append(f"{type(e).__name__}: {e}")

    def _record(self, text: str) -> None:
        msg = Msg.parse(text, "sent", self.transport)
        msg.at = time.monotonic()
        self.sent.append(msg)

    def send(self, text: str, port: int) -> None:
        self._record(text)
        self.sock.sendto(text.encode(), (self.host, port))

    def later(self, seconds: float, text: str, port: int) -> None:
        """Send after a delay, without holding up the receiving thread."""
        t = threading.Timer(seconds, self.send, (text, port))
        t.daemon = True
        t.start()

    def _reply_to(self, req: Msg) -> int:
        return via_sent_by(req.vias[0])[1] or 5060

    def answer(self, req: Msg, code: int, reason: str, to_tag: str | None = None, delay: float = 0,
               extra: list[str] | None = None) -> None:
        """Reply to req where its top Via says (RFC 3261 §18.2.2), now or after delay s."""
        text = reply(req, code, reason, self, to_tag, extra)
        if delay:
            self.later(delay, text, self._reply_to(req))
        else:
            self.send(text, self._reply_to(req))

    def wait_for(self, pred: Callable[[Msg], bool], what: str, timeout: float = 10) -> Msg:
        """The first received message for which pred holds, waiting up to timeout s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.received:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no {what} within {timeout}s; got {self.received}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


class TcpPeer(Peer):
    """A TCP endpoint. As a callee it listens and answers on the connection a
    request came on; as a caller (connect_to=PORT) it has no listener at all:
    its Via and Contact name the local port of its one connection, so that a
    request for it arrives only if the proxy reuses that connection."""

    transport = "TCP"

    def __init__(self, name: str, handler: Handler | None = None, connect_to: int | None = None,
                 host: str = HOST):
        self.connect_to = connect_to
        self.conns: list[socket.socket] = []
        self.accepted = 0
        self._hang_up: threading.Event | None = None
        super().__init__(name, handler, host)

    def _open(self) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        if self.connect_to:
            sock.connect((self.host, self.connect_to))
            self.conns.append(sock)
        else:
            sock.listen(8)
        return sock

    def hang_up(self, timeout: float = 2) -> None:
        """Close every connection of this peer (in its reading thread)."""
        self._hang_up = threading.Event()
        if not self._hang_up.wait(timeout):
            raise AssertionError(f"{self.name}: connections not closed within {timeout}s")

    def _run(self) -> None:
        buffers: dict[socket.socket, bytes] = {}
        while not self._stop:
            if self._hang_up is not None and not self._hang_up.is_set():
                for c in self.conns:
                    c.close()
                self.conns.clear()
                self._hang_up.set()
            watch = self.conns + ([] if self.connect_to else [self.sock])
            r, _, _ = select.select(watch, [], [], 0.05)
            for s in r:
                if s is self.sock and not self.connect_to:
                    conn, _ = self.sock.accept()
                    self.conns.append(conn)
                    self.accepted += 1
                    continue
                data = s.recv(65535)
                if not data:
                    self.conns.remove(s)
                    continue
                buffers[s] = buffers.get(s, b"") + data
                while (frame := _next_frame(buffers[s])) is not None:
                    buffers[s] = buffers[s][len(frame):]
                    self._deliver(frame, s, s.getpeername()[1])

    def send(self, text: str, conn: socket.socket | int | None = None) -> None:
        """Over conn, or the peer's newest connection."""
        if not isinstance(conn, socket.socket):
            conn = self.conns[-1]
        self._record(text)
        conn.sendall(text.encode())

    def _reply_to(self, req: Msg) -> socket.socket:
        return req.conn  # RFC 3261 §18.2.2: the connection the request came on

    def close(self) -> None:
        super().close()
        for c in self.conns:
            c.close()


def _next_frame(buf: bytes) -> bytes | None:
    """The first whole message of a stream (RFC 3261 §18.3), or None."""
    buf_start = len(buf) - len(buf.lstrip(b"\r\n"))
    end = buf.find(b"\r\n\r\n", buf_start)
    if end < 0:
        return None
    length = 0
    for line in buf[buf_start:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value.strip())
    total = end + 4 + length
    return buf[:total] if len(buf) >= total else None


def is_response(code: int, method: str) -> Callable[[Msg], bool]:
    return lambda m: not m.is_request and m.code == code and m.cseq_method == method


def is_final(method: str) -> Callable[[Msg], bool]:
    return lambda m: not m.is_request and m.code >= 200 and m.cseq_method == method


def is_request(method: str) -> Callable[[Msg], bool]:
    return lambda m: m.is_request and m.method == method


def request(method: str, ruri: str, caller: Peer, *, call_id: str | None = None, cseq: int = 1,
            branch: str | None = None, from_tag: str = "caller", to: str | None = None,
            routes: list[str] | None = None, extra: list[str] | None = None) -> str:
    """A request as the caller peer sends it (one Via of its own)."""
    branch = branch or f"z9hG4bK-{caller.name}-{next(_serial)}"
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{caller.transport} {caller.hostport};branch={branch}",
        "Max-Forwards: 70",
        f"From: <{caller.uri}>;tag={from_tag}",
        f"To: {to or '<' + ruri + '>'}",
        f"Call-ID: {call_id or f'{caller.name}-{next(_serial)}@test'}",
        f"CSeq: {cseq} {method}",
        f"Contact: <{caller.uri}>",
    ]
    lines += [f"Route: {r}" for r in routes or []]
    lines += list(extra or [])
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


def reply(req: Msg, code: int, reason: str, peer: Peer, to_tag: str | None = None,
          extra: list[str] | None = None) -> str:
    """A response to req (RFC 3261 §8.2.6): its Vias, From, Call-ID and CSeq; To
    with to_tag added when it has none; Record-Route echoed; peer's Contact."""
    to = req.get("to") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in req.vias]
    lines += [f"Record-Route: {rr}" for rr in req.all("record-route")]
    lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}", f"CSeq: {req.get('cseq')}",
              f"Contact: <{peer.uri}>"]
    lines += list(extra or [])
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


def cancel_for(invite: str) -> str:
    """The caller's CANCEL of its INVITE (RFC 3261 §9.1): its Request-URI,
    top Via, From, To, Call-ID, CSeq number and Route."""
    inv = Msg.parse(invite)
    lines = [f"CANCEL {inv.ruri} SIP/2.0", f"Via: {inv.vias[0]}", "Max-Forwards: 70", f"From: {inv.get('from')}",
             f"To: {inv.get('to')}", f"Call-ID: {inv.call_id}", f"CSeq: {inv.cseq_num} CANCEL"]
    lines += [f"Route: {r}" for r in inv.all("route")]
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


def ack_for(invite: str, final: Msg) -> str:
    """The caller's ACK of a non-2xx final response (RFC 3261 §17.1.1.3): the
    INVITE's Request-URI, Via, From, Call-ID and Route, the response's To."""
    inv = Msg.parse(invite)
    lines = [f"ACK {inv.ruri} SIP/2.0", f"Via: {inv.vias[0]}", "Max-Forwards: 70", f"From: {inv.get('from')}",
             f"To: {final.get('to')}", f"Call-ID: {inv.call_id}", f"CSeq: {inv.cseq_num} ACK"]
    lines += [f"Route: {r}" for r in inv.all("route")]
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


class Peers:
    """The peers of one test (the conftest fixture `peers`): peers(name,
    handler) makes a UDP one, peers.tcp(...) a TCP one; close() stops them
    and returns what their handlers raised."""

    def __init__(self):
        self.made: list[Peer] = []

    def __call__(self, name: str, handler: Handler | None = None, host: str = HOST) -> Peer:
        self.made.append(Peer(name, handler, host))
        return self.made[-1]

    def tcp(self, name: str, handler: Handler | None = None, connect_to: int | None = None,
            host: str = HOST) -> TcpPeer:
        self.made.append(TcpPeer(name, handler, connect_to, host))
        return self.made[-1]

    def close(self) -> list[str]:
        for p in self.made:
            p.close()
        return [f"{p.name}: {e}" for p in self.made for e in p.errors]


def first_time(peer: Peer, m: Msg) -> bool:
    """True for the first copy of a request (retransmissions share method and branch)."""
    same = [r for r in peer.received if r.is_request and r.method == m.method and r.top_branch == m.top_branch]
    return same[0] is m


def answers_invite(code: int, reason: str, delay: float = 0) -> Handler:
    """A callee that answers the first copy of each INVITE with code (To
    tag "t"), after delay s."""
    def on_message(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, code, reason, "t", delay=delay)

    return on_message


def finals(peer: Peer, method: str = "INVITE") -> list[Msg]:
    return distinct([m for m in peer.received if is_final(method)(m)])


def acking_caller(peers: Peers) -> Peer:
    """A UDP caller that ACKs every non-2xx final response to its INVITEs, as a
    UA must, to where the response came from (the proxy)."""
    def on_message(peer: Peer, m: Msg) -> None:
        if is_final("INVITE")(m) and m.code >= 300:
            invite = next(s for s in peer.sent if s.is_request and s.method == "INVITE" and s.call_id == m.call_id)
            peer.send(ack_for(invite.raw, m), m.src_port)

    return peers("caller", on_message)


def ringing_callee(tag: str, answers_as_cancel_comes: bool = False) -> Handler:
    """A callee that rings (180, To tag `tag`), answers a BYE with 200, and a
    CANCEL with 200 and then 487 for its INVITE (RFC 3261 §9.2); or, with
    answers_as_cancel_comes, first with a 200 for its INVITE, as if that
    200 had crossed the CANCEL."""
    def on_message(peer: Peer, m: Msg) -> None:
        if not (m.is_request and first_time(peer, m)):
            return
        if m.method == "INVITE":
            peer.answer(m, 180, "Ringing", tag)
        elif m.method == "BYE":
            peer.answer(m, 200, "OK")
        elif m.method == "CANCEL":
            invite = next(r for r in peer.received if is_request("INVITE")(r) and r.top_branch == m.top_branch)
            if answers_as_cancel_comes:
                peer.answer(invite, 200, "OK", tag)
            peer.answer(m, 200, "OK")
            if not answers_as_cancel_comes:
                peer.answer(invite, 487, "Request Terminated", tag)

    return on_message


def ringing_then(tag: str, code: int, reason: str, delay: float) -> Handler:
    """A callee that rings (180, To tag `tag`) and gives its final answer
    `code reason` delay s later."""
    def on_message(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 180, "Ringing", tag)
            peer.answer(m, code, reason, tag, delay=delay)

    return on_message
