"""Wire fuzz of the whole running proxy: mutated SIP over UDP through imsdlgd
with ims_dialog, for a bounded time and from a fixed seed.

The SIP parser has a libFuzzer target of its own. This test reaches what
comes after it: transactions, record-route and loose routing, the dialog
engine (its cookie and Call-ID matching, timeouts, keep-alives and BYEs of
its own) and the Lua script (dialog.lua) all see the messages, in the order
real calls bring them, with a few shapes broken on the way.

Two UDP sockets of the test process stand on each side of the proxy: the
caller, and the callee ("sink") named by every Request-URI. Each of CALLS
call flows is an INVITE with SDP; the sink answers what reaches it
(provisional 100/180/183, then 200, 486, another failure or nothing until a
CANCEL brings 487), built from the request it got (its Vias in order, From,
To with a tag, Call-ID, CSeq, its Record-Route echoed, a Contact); the
caller then sends ACK, CANCEL, re-INVITE, UPDATE, PRACK, INFO, OPTIONS,
MESSAGE and BYE in the call, along the Record-Route it got back. Every
message either side sends, answers included, is mutated with probability
MUTATE_P (1 to 3 of MUTATIONS). After each call come single mutated
messages: RFC 4475 torture messages (half of them pointed at the sink) and
messages of the calls, sent again out of their context.

Nothing in a flow has to succeed. What must hold at the end: imsdlgd is
alive; it answers PROBES OPTIONS with Max-Forwards: 0 with 483, and relays
PROBES others to the sink and the sink's 200s back (each of its own
Call-ID, so that every worker gets some: a worker stuck alone shows); it
exits 0 on SIGTERM; its log holds no sanitizer report (conftest's proxy
fixture checks that at teardown). A share of the calls must have gone
through as well, so that a proxy that stopped relaying early cannot pass.

Every choice is drawn from random.Random(SEED) (IMSDLG_FUZZ_SEED overrides
it), so a run repeats as far as the proxy's timing lets it: what reaches a
socket within a wait decides the next choices. Everything sent and received
is written to wire.log in the test's directory, one Python literal
(seconds, direction, bytes) per datagram, to replay a failure from.

imsdlgd only (ims_dialog), and only in the loopback-only network namespace:
the torture messages and the mutated URIs name foreign hosts.
"""

from __future__ import annotations

import os
import random
import re
import select
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import conftest

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd", reason="ims_dialog is imsdlgd's")

SEED = int(os.environ.get("IMSDLG_FUZZ_SEED", "20261130"))
CALLS = 300
SINGLES_PER_CALL = 1
MUTATE_P = 0.3
ANSWER_WAIT = 0.04  # s for the answer to a request of a call: the sink answers at once
SINGLE_WAIT = 0.01  # s after a single message, most of which get no answer we could see
PROBES = 16  # OPTIONS of each kind at the end
PROBE_WAIT = 5.0  # s for the proxy to answer them

# Short dialog timers, so that the engine's own requests (BYEs at the
# lifetime's end and for calls never ACKed, CANCELs of calls ringing too
# long, keep-alives) cross the fuzzed traffic while it runs.
MODPARAMS = {
    ("ims_dialog", "default_timeout"): 3,
    ("ims_dialog", "noack_timeout"): 2,
    ("ims_dialog", "early_timeout"): 3,
    ("ims_dialog", "end_timeout"): 1,
    ("ims_dialog", "ka_interval"): 1,
    ("ims_dialog", "dlg_match_mode"): 1,
    ("ims_dialog", "profiles_with_value"): "caller",
    ("ims_dialog", "event_callback"): "ksr_dialog_event",
}

SDP = (b"v=0\r\no=fuzz 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")

# Headers that make dialog.lua call more of ims_dialog: on the INVITE
# (properties: keep-alives, timeout-noreset; the transaction first; a
# profile) and on requests in the call (validate_dialog, dlg_set_ruri,
# the X-Do actions, which the script answers itself).
INVITE_HOOKS = [b"X-Dlg-Props: ka-src,ka-dst", b"X-Dlg-Props: ka-dst,timeout-noreset", b"X-Newtran-First: 1",
                b"X-Profile: caller=fuzz"]
IN_DIALOG_HOOKS = [b"X-Validate: 1", b"X-Set-Ruri: 1", b"X-Dlg-Props: -ka-src,-ka-dst", b"X-Do: bye caller",
                   b"X-Do: bye callee", b"X-Do: req all MESSAGE", b"X-Do: req callee INFO text",
                   b"X-Do: refer caller sip:other@127.0.0.1:9", b"X-Side: callee"]
IN_DIALOG_METHODS = [b"INVITE", b"UPDATE", b"PRACK", b"INFO", b"OPTIONS", b"MESSAGE", b"BYE", b"CANCEL", b"ACK"]

COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id", b"m": b"contact", b"l": b"content-length",
           b"c": b"content-type"}


# --------------------------------------------------------------------------
# messages as bytes: tolerant of whatever the mutations and the proxy make
# --------------------------------------------------------------------------
def split_message(raw: bytes) -> tuple[list[bytes], bytes]:
    """The start line and header lines (CRLF or LF ended), and the body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = raw.partition(b"\n\n")
    return [line.rstrip(b"\r") for line in head.split(b"\n")], body


def join_message(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def header_name(line: bytes) -> bytes:
    name = line.partition(b":")[0].strip().lower()
    return COMPACT.get(name, name)


def header_values(raw: bytes, name: bytes) -> list[bytes]:
    """The value of each line of header `name` (long or compact form)."""
    lines, _ = split_message(raw)
    return [line.partition(b":")[2].strip() for line in lines[1:] if header_name(line) == name]


def header(raw: bytes, name: bytes) -> bytes:
    values = header_values(raw, name)
    return values[0] if values else b""


def tag_of(value: bytes) -> bytes:
    m = re.search(rb";\s*tag\s*=\s*([^;>,\s]+)", value, re.I)
    return m.group(1) if m else b""


def uri_of(value: bytes) -> bytes:
    m = re.search(rb"<([^>]*)>", value)
    return m.group(1) if m else value.split(b";", 1)[0].strip()


def cseq_of(raw: bytes) -> tuple[int, bytes]:
    parts = header(raw, b"cseq").split()
    number = int(parts[0]) if parts and parts[0].isdigit() and len(parts[0]) < 10 else -1
    return number, parts[1] if len(parts) > 1 else b""


def status_of(raw: bytes) -> int:
    """The status code of a response, 0 for a request, -1 when unreadable."""
    if not raw.startswith(b"SIP/"):
        return 0
    parts = raw.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) == 3 else -1


def top_branch(raw: bytes) -> bytes:
    m = re.search(rb";\s*branch\s*=\s*([^;,\s]+)", header(raw, b"via"), re.I)
    return m.group(1) if m else b""


REASONS = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 403: "Forbidden",
           480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
           487: "Request Terminated", 491: "Request Pending", 500: "Server Internal Error", 603: "Decline"}


def response_to(request: bytes, code: int, to_tag: bytes, contact: bytes, extra: Sequence[bytes] = (),
                body: bytes = b"") -> bytes:
    """A response to `request` as a UAS builds it (RFC 3261 8.2.6, 12.1.1):
    its Via, Record-Route, From, To, Call-ID and CSeq lines as they are, in
    their order, To with `to_tag` when it has no tag, and a Contact."""
    lines, _ = split_message(request)
    keep = {b"via", b"record-route", b"from", b"to", b"call-id", b"cseq"}
    out = [f"SIP/2.0 {code} {REASONS.get(code, 'Fuzz')}".encode()]
    for line in lines[1:]:
        name = header_name(line)
        if name == b"to" and not tag_of(line):
            line += b";tag=" + to_tag
        if name in keep:
            out.append(line)
    out.append(b"Contact: <" + contact + b">")
    out += extra
    if body:
        out.append(b"Content-Type: application/sdp")
    out.append(b"Content-Length: %d" % len(body))
    return join_message(out, body)


# --------------------------------------------------------------------------
# mutations: each takes the rng and a message, returns the mutated message
# --------------------------------------------------------------------------
MAX_DATAGRAM = 65507  # IPv4 UDP payload
EXTREMES = [b"0", b"-1", b"4294967296", b"99999999999999999999", b"", b"2147483648", b"65536", b"0000000000000001"]
NUMBERED = {b"cseq", b"content-length", b"max-forwards", b"expires", b"rseq", b"rack", b"via", b"contact",
            b"route", b"record-route"}
BAD_URIS = [
    b"sip:", b"sip:@", b"sip:@127.0.0.1", b"sip:a@", b"sip:a@127.0.0.1:0", b"sip:a@127.0.0.1:65536",
    b"sip:a@127.0.0.1:99999999999999999999", b"sip:a@127.0.0.1:-1", b"sip:a@[::1", b"sip:a@[::1]:9",
    b"sip:a@256.1.1.1", b"sip:a@1.2.3", b"sips:a@127.0.0.1;transport=tcp", b"tel:+1-555-0100", b"*",
    b"<sip:a@127.0.0.1", b"sip:a@127.0.0.1>", b"sip:%00%ff%@127.0.0.1", b"sip:a@127.0.0.1;lr;lr;lr=;lr",
    b"sip:a@127.0.0.1;maddr=;transport=", b"sip:a@127.0.0.1;transport=sctp", b"sip:a@127.0.0.1;did=;ftag=",
    b"sip:a:b:c@d:e:f", b"sip:a@127.0.0.1?to=x&&&=", b"sip:" + b"a" * 3000 + b"@127.0.0.1",
    b"sip:a@" + b"h." * 200 + b"test", b"http://example.com/", b"sip:a@\x00", b"sip:a@127.0.0.1:9" + b";" * 100,
]
ROUTE_PARAMS = [b";did=", b";did=0.0", b";did=ffffffff.ffffffff", b";did=1.99999999999999999999", b";did=a.b.c",
                b";did=" + b"9" * 40, b";ftag=", b";ftag=" + b"x" * 300, b";lr=on", b";r2=on", b";did=1.1;did=2.2"]
VIA_PARAMS = [b";branch=", b";branch=z9hG4bK", b";branch=z9hG4bK" + b"x" * 500, b";branch=a;branch=b",
              b";rport=abc", b";rport=99999", b";rport=-1", b";received=300.1.1.1", b";received=",
              b";received=::1", b";maddr=", b";maddr=224.0.0.1", b";ttl=999", b";;;", b";" * 200,
              b';x="unterminated', b";branch=z9hG4bK\x00\xff", b",", b", SIP/2.0/UDP", b" ; branch = z9hG4bK-sp "]
VIA_SENT_BY = [b"SIP/2.0/UDP [::1", b"SIP/2.0/UDP 127.0.0.1:0", b"SIP/2.0/UDP 127.0.0.1:99999", b"SIP/2.0/UDP :9",
               b"SIP/2.0/UDP", b"SIP/3.0/UDP 127.0.0.1", b"SIP/2.0/XYZ 127.0.0.1", b"SIP/2.0/TCP 127.0.0.1:9",
               b"SIP/2.0/UDP 255.255.255.255"]
METHODS = [b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"PRACK", b"UPDATE", b"INFO", b"REGISTER", b"NOTIFY",
           b"REFER", b"MESSAGE", b"invite", b"INVITEX", b"I", b"!interesting-Method0123456789_*+`.%indeed'~", b"",
           b"X" * 300]
STATUS_CODES = [b"100", b"101", b"180", b"183", b"199", b"200", b"202", b"299", b"302", b"400", b"401", b"407",
                b"408", b"481", b"486", b"487", b"491", b"500", b"503", b"603", b"699", b"0", b"99", b"700", b"999",
                b"1000", b"2OO", b""]
ODD_BYTES = [b"\x00", b"\r", b"\n", b"\r\n", b":", b";", b",", b"<", b">", b'"', b"%", b" ", b"\t", b"\xff", b"="]


def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4) if data else 0):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def insert_bytes(rng: random.Random, raw: bytes) -> bytes:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(ODD_BYTES + [bytes([rng.randrange(256)])]) + raw[at:]
    return raw


def delete_bytes(rng: random.Random, raw: bytes) -> bytes:
    at = rng.randrange(len(raw) + 1)
    return raw[:at] + raw[at + rng.randint(1, 8):]


def delete_header(rng: random.Random, raw: bytes) -> bytes:
    lines, body = split_message(raw)
    if len(lines) > 1:
        del lines[rng.randrange(1, len(lines))]
    return join_message(lines, body)


def duplicate_header(rng: random.Random, raw: bytes) -> bytes:
    """One header line again, usually once, sometimes a few hundred times."""
    lines, body = split_message(raw)
    line = lines[rng.randrange(1, len(lines))] if len(lines) > 1 else b"Via: SIP/2.0/UDP 127.0.0.1:9"
    copies = rng.choice([1, 1, 1, 2, 300])
    at = rng.randrange(1, len(lines) + 1)
    return join_message(lines[:at] + [line] * copies + lines[at:], body)


def swap_lines(rng: random.Random, raw: bytes) -> bytes:
    """Two lines exchanged: the start line may move too."""
    lines, body = split_message(raw)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return join_message(lines, body)


def extreme_number(rng: random.Random, raw: bytes) -> bytes:
    """A number of the start line (status code, port, version) or of a
    header that carries one (CSeq, Content-Length, Max-Forwards, Expires,
    RSeq/RAck, a port) replaced by an extreme or by nothing."""
    lines, body = split_message(raw)
    spots = [i for i, line in enumerate(lines)
             if re.search(rb"\d", line) and (i == 0 or header_name(line) in NUMBERED)]
    if not spots:
        lines.insert(1, b"Expires: " + rng.choice(EXTREMES))
        return join_message(lines, body)
    i = rng.choice(spots)
    number = rng.choice(list(re.finditer(rb"\d+", lines[i])))
    lines[i] = lines[i][:number.start()] + rng.choice(EXTREMES) + lines[i][number.end():]
    return join_message(lines, body)


def mangle_tags(rng: random.Random, raw: bytes) -> bytes:
    """From or To: its tag dropped, doubled, emptied or made huge."""
    lines, body = split_message(raw)
    spots = [i for i, line in enumerate(lines) if i and header_name(line) in (b"from", b"to")]
    if not spots:
        return raw
    i = rng.choice(spots)
    how = rng.randrange(4)
    if how == 0:
        lines[i] = re.sub(rb";\s*tag\s*=[^;>,]*", b"", lines[i], flags=re.I)
    else:
        lines[i] += [b";tag=dup", b";tag=", b";tag=" + b"t" * 1000][how - 1]
    return join_message(lines, body)


def change_start_line(rng: random.Random, raw: bytes) -> bytes:
    """Another status code for a response; another method for a request,
    in CSeq too half of the time (else the two disagree)."""
    first, sep, rest = raw.partition(b" ")
    if raw.startswith(b"SIP/"):
        _, sep2, tail = rest.partition(b" ")
        return first + sep + rng.choice(STATUS_CODES) + sep2 + tail
    method = rng.choice(METHODS)
    raw = method + sep + rest
    if rng.random() < 0.5:
        raw = re.sub(rb"(?im)^(CSeq\s*:\s*\d*\s*)\S*", lambda m: m.group(1) + method, raw, count=1)
    return raw


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw) + 1)]


def huge_value(rng: random.Random, raw: bytes) -> bytes:
    """A header's value, or a new header's, of 5,000 'a' bytes."""
    lines, body = split_message(raw)
    if len(lines) > 1 and rng.random() < 0.7:
        i = rng.randrange(1, len(lines))
        lines[i] = lines[i].partition(b":")[0] + b": " + b"a" * 5000
    else:
        lines.insert(rng.randrange(1, len(lines) + 1), b"X-Huge: " + b"a" * 5000)
    return join_message(lines, body)


def garbage_via(rng: random.Random, raw: bytes) -> bytes:
    """A Via with a broken parameter or branch, or a broken protocol and sent-by."""
    lines, body = split_message(raw)
    spots = [i for i, line in enumerate(lines) if i and header_name(line) == b"via"]
    if not spots:
        lines.insert(1, b"Via: " + rng.choice(VIA_SENT_BY) + rng.choice(VIA_PARAMS))
        return join_message(lines, body)
    i = rng.choice(spots)
    name, _, value = lines[i].partition(b":")
    if rng.random() < 0.7:
        cuts = [m.start() for m in re.finditer(rb";", value)] + [len(value)]
        at = rng.choice(cuts)
        value = value[:at] + rng.choice(VIA_PARAMS) + value[at:]
    else:
        value = re.sub(rb"^\s*\S+\s*[^;,]*", lambda m: b" " + rng.choice(VIA_SENT_BY), value, count=1)
    lines[i] = name + b":" + value
    return join_message(lines, body)


def bad_uri(rng: random.Random, raw: bytes) -> bytes:
    """A broken URI as Request-URI, or in a Route, Record-Route, Contact, From or To."""
    lines, body = split_message(raw)
    spots = [i for i, line in enumerate(lines)
             if (i == 0 and not line.startswith(b"SIP/"))
             or (i and header_name(line) in (b"route", b"record-route", b"contact", b"from", b"to"))]
    if not spots:
        return raw
    i, bad = rng.choice(spots), rng.choice(BAD_URIS)
    if i == 0:
        parts = lines[0].split(b" ")
        if len(parts) > 2:
            parts[1] = bad
        lines[0] = b" ".join(parts)
    else:
        name, _, value = lines[i].partition(b":")
        if b"<" in value:
            value = re.sub(rb"<[^>]*>?", lambda m: b"<" + bad + b">", value, count=1)
        else:
            value = b" " + bad
        lines[i] = name + b":" + value
    return join_message(lines, body)


def mangle_route_params(rng: random.Random, raw: bytes) -> bytes:
    """In a Route or Record-Route: the dialog cookie (did), ftag or lr
    removed, or a broken one added (with neither header: bad_uri())."""
    lines, body = split_message(raw)
    spots = [i for i, line in enumerate(lines) if i and header_name(line) in (b"route", b"record-route")]
    if not spots:
        return bad_uri(rng, raw)
    i = rng.choice(spots)
    if rng.random() < 0.4:
        param = rng.choice([b"did", b"ftag", b"lr"])
        lines[i] = re.sub(rb";\s*" + param + rb"(=[^;>]*)?", b"", lines[i], count=1, flags=re.I)
    else:
        end = lines[i].find(b">")
        at = end if end >= 0 else len(lines[i])
        lines[i] = lines[i][:at] + rng.choice(ROUTE_PARAMS) + lines[i][at:]
    return join_message(lines, body)


def line_endings(rng: random.Random, raw: bytes) -> bytes:
    """CRLF as LF everywhere, as LF in some lines only, or as a bare CR."""
    how = rng.randrange(3)
    if how == 0:
        return raw.replace(b"\r\n", b"\n")
    if how == 1:
        return raw.replace(b"\r\n", b"\n", rng.randint(1, 4))
    return raw.replace(b"\r\n", b"\r", rng.randint(1, 4))


def mangle_body(rng: random.Random, raw: bytes) -> bytes:
    """The body cut, doubled (an SDP where there was none) or followed by
    random bytes, Content-Length left as it was; or Content-Length removed."""
    lines, body = split_message(raw)
    how = rng.randrange(4)
    if how == 0:
        body = body[:rng.randrange(len(body) + 1)]
    elif how == 1:
        body = body * 2 if body else SDP
    elif how == 2:
        body += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        lines = [line for line in lines if header_name(line) != b"content-length"]
    return join_message(lines, body)


MUTATIONS = [flip_bytes, insert_bytes, delete_bytes, delete_header, duplicate_header, swap_lines, extreme_number,
             mangle_tags, change_start_line, truncate, huge_value, garbage_via, bad_uri, mangle_route_params,
             line_endings, mangle_body]


def mutate(rng: random.Random, raw: bytes) -> bytes:
    """1 to 3 mutations, the result cut to what one UDP datagram holds."""
    for mutation in rng.choices(MUTATIONS, k=rng.choice([1, 1, 2, 3])):
        raw = mutation(rng, raw)
    return raw[:MAX_DATAGRAM]


# --------------------------------------------------------------------------
# the two sides
# --------------------------------------------------------------------------
@dataclass
class Call:
    """What the caller knows of one call."""

    call_id: bytes
    from_tag: bytes
    ruri: bytes
    cseq: int = 1
    invite: bytes = b""  # the last INVITE sent, before any mutation
    to_tag: bytes = b""
    route: list[bytes] = field(default_factory=list)  # the Record-Route got back, reversed (RFC 3261 12.1.2)
    target: bytes = b""  # the callee's Contact
    rseq: int = 0
    finals: dict[tuple[int, bytes], bytes] = field(default_factory=dict)  # (CSeq, method) -> first final


class Fuzz:
    """The caller and the sink, their UDP sockets facing the proxy, what
    they sent, and the log of everything that crossed."""

    def __init__(self, proxy_port: int, rng: random.Random, log_path: Path):
        self.proxy = (conftest.HOST, proxy_port)
        self.rng = rng
        self.calm = False  # at the probes: nothing mutated, the sink answers 200
        self.caller, self.sink = self._socket(), self._socket()
        self.caller_port = self.caller.getsockname()[1]
        self.sink_port = self.sink.getsockname()[1]
        self.calls: dict[bytes, Call] = {}
        # the sink's memory: its answers by (branch, method) for retransmissions,
        # the INVITEs it left unanswered (for CANCEL) and the calls it answered 2xx
        self.sink_answers: dict[tuple[bytes, bytes], bytes] = {}
        self.sink_pending: dict[bytes, bytes] = {}
        self.sink_dialogs: dict[bytes, tuple[bytes, bytes]] = {}
        # messages of the calls (as built, or as received) and the socket to send them again from
        self.recent: deque[tuple[socket.socket, bytes]] = deque(maxlen=200)
        self.count: Counter = Counter()
        self.serial = 0
        self.started = time.monotonic()
        self.log = open(log_path, "w")

    @staticmethod
    def _socket() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((conftest.HOST, 0))
        s.setblocking(False)
        return s

    def close(self) -> None:
        self.caller.close()
        self.sink.close()
        self.log.close()

    def _trace(self, direction: str, data: bytes) -> None:
        self.log.write(repr((round(time.monotonic() - self.started, 4), direction, data)) + "\n")

    def next_id(self) -> int:
        self.serial += 1
        return self.serial

    def new_branch(self) -> bytes:
        return b"z9hG4bK-%d" % self.next_id()

    # --- the wire ---------------------------------------------------------
    def send(self, sock: socket.socket, data: bytes) -> None:
        """Send a message of a call to the proxy, mutated with probability MUTATE_P."""
        self.recent.append((sock, data))
        if not self.calm and self.rng.random() < MUTATE_P:
            data = mutate(self.rng, data)
            self.count["mutated"] += 1
        self._send_as_is(sock, data)

    def _send_as_is(self, sock: socket.socket, data: bytes) -> None:
        self.count["sent"] += 1
        self._trace("caller>" if sock is self.caller else "sink>", data)
        sock.sendto(data, self.proxy)

    def pump(self, done: Callable[[], bool], timeout: float) -> None:
        """Take in and act on what arrives until done() or timeout s."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.caller, self.sink], [], [], left)
            for sock in ready:
                self._drain(sock)

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            if sock is self.caller:
                self._trace(">caller", data)
                self.count["caller got"] += 1
                self.caller_got(data)
            else:
                self._trace(">sink", data)
                self.count["sink got"] += 1
                self.sink_got(data)
            self.recent.append((self.caller if status_of(data) == 0 else self.sink, data))

    # --- the caller ---------------------------------------------------------
    def request(self, call: Call, method: bytes, cseq: int, branch: bytes, ruri: bytes = b"", to_tag: bytes = b"",
                route: Sequence[bytes] = (), extra: Sequence[bytes] = (), body: bytes = b"",
                max_forwards: int = 70) -> bytes:
        lines = [method + b" " + (ruri or call.ruri) + b" SIP/2.0",
                 b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.caller_port, branch),
                 b"Max-Forwards: %d" % max_forwards,
                 b"From: <sip:caller@127.0.0.1>;tag=" + call.from_tag,
                 b"To: <" + call.ruri + b">" + (b";tag=" + to_tag if to_tag else b""),
                 b"Call-ID: " + call.call_id,
                 b"CSeq: %d %s" % (cseq, b"ACK" if method == b"ACK" else method),
                 b"Contact: <sip:caller@127.0.0.1:%d>" % self.caller_port]
        lines += [b"Route: <" + uri + b">" for uri in route]
        lines += extra
        if body:
            lines.append(b"Content-Type: application/sdp")
        lines.append(b"Content-Length: %d" % len(body))
        return join_message(lines, body)

    def caller_got(self, data: bytes) -> None:
        code = status_of(data)
        if code == 0:
            # the engine's BYEs and keep-alives, the script's requests, the sink's BYE
            if not data.startswith(b"ACK "):
                self.send(self.caller, response_to(data, 200, b"caller", b"sip:caller@127.0.0.1:%d" % self.caller_port))
            return
        call = self.calls.get(header(data, b"call-id"))
        if call is None or code < 0:
            return
        to_tag = tag_of(header(data, b"to"))
        if to_tag and not call.to_tag and 100 < code < 300:
            call.to_tag = to_tag
            call.route = [uri_of(v) for v in reversed(header_values(data, b"record-route"))]
            call.target = uri_of(header(data, b"contact"))
        rseq = header(data, b"rseq")
        if rseq.isdigit() and len(rseq) < 10:
            call.rseq = int(rseq)
        if code >= 200:
            call.finals.setdefault(cseq_of(data), data)

    def exchange(self, call: Call, request: bytes) -> bytes | None:
        """Send a request of a call; its first final answer, if one came in time."""
        key = cseq_of(request)
        self.send(self.caller, request)
        self.pump(lambda: key in call.finals, ANSWER_WAIT)
        return call.finals.get(key)

    def ack(self, call: Call, invite: bytes, final: bytes) -> None:
        """The ACK of a 2xx (a transaction of its own, along the route set) or
        of a failure (hop by hop, the INVITE's branch and To tag of the answer)."""
        cseq, _ = cseq_of(invite)
        if 200 <= status_of(final) < 300:
            ack = self.request(call, b"ACK", cseq, self.new_branch(), call.target, call.to_tag, call.route)
        else:
            ack = self.request(call, b"ACK", cseq, top_branch(invite), to_tag=tag_of(header(final, b"to")))
        self.send(self.caller, ack)
        self.pump(lambda: False, 0.002)  # the ACK on its way (to the sink) before the call's next request

    def run_call(self, number: int) -> None:
        rng = self.rng
        user = rng.choice([b"callee", b"callee", b"ctx"])  # dialog.lua keeps ctx calls' settings in the context
        call = Call(b"fuzz-%d-%d@127.0.0.1" % (number, SEED), b"c%d" % number,
                    b"sip:%s@127.0.0.1:%d" % (user, self.sink_port))
        self.calls[call.call_id] = call
        hooks = rng.sample(INVITE_HOOKS, rng.choice([0, 0, 1, 2]))
        call.invite = self.request(call, b"INVITE", 1, self.new_branch(), extra=hooks, body=SDP)
        final = self.exchange(call, call.invite)
        if final is None and rng.random() < 0.7:
            self.send(self.caller, self.request(call, b"CANCEL", 1, top_branch(call.invite)))
            self.pump(lambda: (1, b"INVITE") in call.finals, ANSWER_WAIT)
            final = call.finals.get((1, b"INVITE"))
        if final is not None and rng.random() < 0.9:
            self.ack(call, call.invite, final)
        for _ in range(rng.randint(0, 4)):
            self.in_dialog(call, rng.choice(IN_DIALOG_METHODS))
        if rng.random() < 0.8:
            self.in_dialog(call, b"BYE")

    def in_dialog(self, call: Call, method: bytes) -> None:
        """A request within the call (or its early dialog), along its route set."""
        if method == b"CANCEL":  # of the last INVITE, perhaps long answered
            cseq, _ = cseq_of(call.invite)
            self.send(self.caller, self.request(call, method, cseq, top_branch(call.invite),
                                                ruri=call.invite.split(b" ")[1]))
            self.pump(lambda: False, 0.005)
            return
        if method == b"ACK":  # a stray one
            self.send(self.caller, self.request(call, method, call.cseq, self.new_branch(), call.target, call.to_tag,
                                                call.route))
            return
        extra = [self.rng.choice(IN_DIALOG_HOOKS)] if self.rng.random() < 0.15 else []
        call.cseq += 1
        if method == b"PRACK":
            extra.append(b"RAck: %d 1 INVITE" % call.rseq)
        body = SDP if method in (b"INVITE", b"UPDATE") else b""
        req = self.request(call, method, call.cseq, self.new_branch(), call.target, call.to_tag, call.route, extra,
                           body)
        if method == b"INVITE":
            call.invite = req
        final = self.exchange(call, req)
        if method == b"INVITE" and final is not None:
            self.ack(call, req, final)

    # --- the sink -------------------------------------------------------------
    def sink_got(self, data: bytes) -> None:
        if status_of(data) != 0:
            return  # the caller's answers to the sink's BYEs
        method = data.split(b" ", 1)[0]
        key = (top_branch(data), method)
        if method == b"ACK":
            self.sink_acked(data)
            return
        if key in self.sink_answers:  # a retransmission: the last answer again
            self.send(self.sink, self.sink_answers[key])
            return
        contact = b"sip:callee@127.0.0.1:%d" % self.sink_port
        to_tag = tag_of(header(data, b"to")) or b"s%d" % self.next_id()

        def answer(code: int, req: bytes = data, extra: Sequence[bytes] = (), body: bytes = b"") -> None:
            reply = response_to(req, code, to_tag, contact, extra, body)
            self.sink_answers[(top_branch(req), req.split(b" ", 1)[0])] = reply
            self.send(self.sink, reply)

        rng = self.rng
        if method == b"INVITE":
            for provisional in (100, 180, 183):
                if rng.random() < 0.5:
                    reliable = provisional == 183 and rng.random() < 0.5
                    answer(provisional, extra=[b"Require: 100rel", b"RSeq: %d" % self.next_id()] if reliable else [],
                           body=SDP if provisional == 183 else b"")
            pick = rng.random()
            if pick < 0.55:
                answer(200, body=SDP)
                self.sink_dialogs[header(data, b"call-id")] = (data, to_tag)
            elif pick < 0.7:
                answer(rng.choice([486, 480, 603, 500]))
            else:  # ringing on: a CANCEL, the engine's early timeout or tm's brings the end
                self.sink_pending[top_branch(data)] = data
        elif method == b"CANCEL":
            answer(200)
            invite = self.sink_pending.pop(top_branch(data), None)
            if invite is not None:
                answer(487, invite)
        else:
            answer(200 if self.calm or rng.random() < 0.85 else rng.choice([481, 491, 500, 403]))

    def sink_acked(self, ack: bytes) -> None:
        """Now and then the callee hangs up: a BYE of its own, along the
        Record-Route of the INVITE in its order, to the caller's Contact."""
        dialog = self.sink_dialogs.pop(header(ack, b"call-id"), None)
        if dialog is None or self.rng.random() >= 0.15:
            return
        invite, to_tag = dialog
        lines = [b"BYE " + uri_of(header(invite, b"contact")) + b" SIP/2.0",
                 b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.sink_port, self.new_branch()),
                 b"Max-Forwards: 70",
                 b"From: " + header(invite, b"to") + b";tag=" + to_tag,
                 b"To: " + header(invite, b"from"),
                 b"Call-ID: " + header(invite, b"call-id"),
                 b"CSeq: 1 BYE"]
        lines += [b"Route: " + rr for rr in header_values(invite, b"record-route")]
        self.send(self.sink, join_message(lines + [b"Content-Length: 0"], b""))

    # --- single messages out of any context -----------------------------------
    def send_single(self, torture: list[bytes]) -> None:
        """A mutated RFC 4475 message, half of them for the sink, or a
        mutated message of the calls again; requests from the caller's
        socket, responses from the sink's."""
        rng = self.rng
        if torture and rng.random() < 0.5:
            raw = rng.choice(torture)
            start, sep, rest = raw.partition(b"\r\n")
            parts = start.split(b" ")
            if status_of(raw) == 0 and len(parts) > 2 and rng.random() < 0.5:
                parts[1] = b"sip:torture@127.0.0.1:%d" % self.sink_port
                raw = b" ".join(parts) + sep + rest
            sock = self.caller if status_of(raw) == 0 else self.sink
        else:
            sock, raw = rng.choice(self.recent)
        self.count["singles"] += 1
        self._send_as_is(sock, mutate(rng, raw))
        self.pump(lambda: False, SINGLE_WAIT)

    # --- the probes -----------------------------------------------------------
    def probe(self, max_forwards: int) -> list[bytes | None]:
        """PROBES OPTIONS for the sink, each of its own Call-ID (the Call-ID
        chooses the worker that handles a message: each worker gets some, all
        but surely), sent unmutated every 0.5 s until each has a final answer
        (the sink's answers are unmutated too, from now on): each one's
        final answer, or None."""
        self.calm = True
        probes = []
        for _ in range(PROBES):
            number = self.next_id()
            call = Call(b"probe-%d@127.0.0.1" % number, b"p%d" % number, b"sip:probe@127.0.0.1:%d" % self.sink_port)
            self.calls[call.call_id] = call
            probes.append((call, self.request(call, b"OPTIONS", 1, self.new_branch(), max_forwards=max_forwards)))
        deadline = time.monotonic() + PROBE_WAIT
        while time.monotonic() < deadline and not all(call.finals for call, _ in probes):
            for call, options in probes:
                if not call.finals:
                    self.send(self.caller, options)
            self.pump(lambda: all(call.finals for call, _ in probes), 0.5)
        return [call.finals.get((1, b"OPTIONS")) for call, _ in probes]


@pytest.fixture
def fuzz_proxy(proxy, monkeypatch):
    """proxy() with ims_dialog loaded (as test_dialog.py's dlg_proxy)."""
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2, **kw):
        text = orig(kind, port, children, lua, modparams, debug, **kw)
        return text.replace('loadmodule "app_lua.so"', 'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')

    monkeypatch.setattr(conftest, "render_cfg", render)
    return proxy


def test_wire_fuzz(fuzz_proxy, tmp_path):
    if not conftest.NETNS["isolated"]:
        pytest.skip("mutated messages name foreign hosts and addresses: this test runs only in the "
                    f"loopback-only network namespace ({conftest.NETNS['why']})")
    torture = [p.read_bytes() for p in sorted(conftest.TORTURE_DIR.glob("*.dat"))]
    p = fuzz_proxy("dialog.lua", subst={"REASON": "fuzz"}, modparams=MODPARAMS)
    fuzz = Fuzz(p.port, random.Random(SEED), tmp_path / "wire.log")
    where = f"seed {SEED}, everything sent and received in {tmp_path / 'wire.log'}"
    try:
        for number in range(CALLS):
            fuzz.run_call(number)
            for _ in range(SINGLES_PER_CALL):
                fuzz.send_single(torture)
            if number % 20 == 0:
                assert p.alive(), f"imsdlgd died during call {number} ({where})"
        assert p.alive(), f"imsdlgd died ({where})"
        too_many_hops = fuzz.probe(max_forwards=0)
        relayed = fuzz.probe(max_forwards=70)
    finally:
        fuzz.close()
    count = fuzz.count
    print(f"seed {SEED}: {dict(count)} in {time.monotonic() - fuzz.started:.1f} s")
    codes = [status_of(final) if final else None for final in too_many_hops]
    assert codes == [483] * PROBES, f"OPTIONS with Max-Forwards: 0 after the fuzz, answers: {codes} ({where})"
    codes = [status_of(final) if final else None for final in relayed]
    assert codes == [200] * PROBES and all(b"sip:callee@" in header(final, b"contact") for final in relayed), \
        f"OPTIONS relayed to the sink after the fuzz, answers: {codes} ({where})"
    # a sane amount of traffic went out, and a good share of it through the proxy
    assert count["sent"] >= 3 * CALLS and count["singles"] == CALLS * SINGLES_PER_CALL, count
    assert count["sink got"] >= CALLS and count["caller got"] >= CALLS, f"little came through the proxy: {count}"
    assert p.stop() == 0, f"imsdlgd exited {p.returncode} on SIGTERM after the fuzz ({where})"
