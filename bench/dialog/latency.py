#!/usr/bin/env python3
"""Call set-up latency through a proxy, to the microsecond (bench/dialog).

    latency.py PROXY_PORT UAS_PORT UAC_PORT RATE SECONDS OUT
    latency.py during OUT BUSY

A UAC on 127.0.0.1:UAC_PORT places RATE calls a second for SECONDS through
the proxy on 127.0.0.1:PROXY_PORT to a UAS on 127.0.0.1:UAS_PORT, both in
this process: INVITE, (the proxy's 100), 180 and 200 from the UAS at once,
ACK along the 200's Record-Route, BYE 20 ms later, its 200. (Not SIPp's UAS:
it answers at its next scheduling tick, about 3 ms here, which would hide
what the proxy adds.) The set-up latency of a call is its first INVITE sent
-> 200 received (time.perf_counter). Requests are retransmitted as RFC 3261 17.1
says over UDP (T1 = 500 ms, doubling; an INVITE until a reply comes, a BYE
until its final reply); a call without its 200 within 5 s (timer B would be
32 s: 5 s is what a caller waits for) or without the BYE's 200 within 5 s
has failed.

OUT gets one line per call: "send_epoch latency_us retransmissions", or
"send_epoch fail-invite|fail-bye retransmissions". The summary goes to
stdout as JSON: calls, failed (INVITE, BYE), retransmissions, p50/p99/max
in microseconds.

"during" reads OUT afterwards with BUSY (rpc.py loop's output, complete
once the loop has ended) and gives the same figures for the calls set up
(INVITE sent to 200 received) while a dlg.list was in progress.
"""
import json
import os
import re
import select
import socket
import sys
import time

PAUSE = 0.020  # ACK -> BYE, as the SIPp UAC does
TIMEOUT = 5.0
T1 = 0.5


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def header(msg, *names):
    for name in names:
        m = re.search(r"^%s[ \t]*:[ \t]*(.*?)\r$" % name, msg, re.M | re.I)
        if m:
            return m.group(1)
    return None


def uas_reply(msg, code, reason, totag, contact):
    """A reply to msg: its Via lines, Record-Route (for 1xx/2xx to INVITE),
    From, To (with totag unless it has one), Call-ID, CSeq."""
    lines = msg.split("\r\n")
    keep = [l for l in lines if re.match(r"(Via|v|Record-Route)[ \t]*:", l, re.I)]
    to = header(msg, "To", "t")
    if ";tag=" not in to:
        to += ";tag=" + totag
    return ("SIP/2.0 %d %s\r\n%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"
            "%sContent-Length: 0\r\n\r\n") % (
        code, reason, "\r\n".join(keep), header(msg, "From", "f"), to,
        header(msg, "Call-ID", "i"), header(msg, "CSeq"),
        ("Contact: <%s>\r\n" % contact) if contact else "")


def uas(sock, data, addr, contact):
    """Answers a request at once: INVITE 180 + 200, BYE 200, ACK nothing."""
    msg = data.decode(errors="replace")
    method = msg.split(" ", 1)[0]
    totag = "u%x" % (hash(header(msg, "Call-ID", "i")) & 0xffffffff)
    if method == "INVITE":
        sock.sendto(uas_reply(msg, 180, "Ringing", totag, contact).encode(), addr)
        sock.sendto(uas_reply(msg, 200, "OK", totag, contact).encode(), addr)
    elif method == "BYE":
        sock.sendto(uas_reply(msg, 200, "OK", totag, None).encode(), addr)


class Call:
    __slots__ = ("i", "t0", "lat", "state", "msg", "rtx", "next_rtx", "interval",
                 "t_bye", "rr", "target", "to")

    def __init__(self, i, t0, msg):
        self.i, self.t0, self.msg = i, t0, msg
        self.lat = None
        self.state = "invite"  # -> "bye" (BYE due or sent) -> "done" / "fail-*"
        self.rtx = 0
        self.interval = T1
        self.next_rtx = t0 + T1
        self.t_bye = None


def summary(lat, failed, rtx):
    us = [round(x) for x in lat]
    return {"calls": len(lat) + failed["fail-invite"] + failed["fail-bye"],
            "failed": failed["fail-invite"] + failed["fail-bye"],
            "failed_invite": failed["fail-invite"], "failed_bye": failed["fail-bye"],
            "retransmissions": rtx,
            "p50_us": pct(us, 50), "p99_us": pct(us, 99), "max_us": max(us) if us else None}


def during(out_path, busy_path):
    spans = []
    with open(busy_path) as f:
        for line in f:
            b = json.loads(line)
            spans.append((b["start"], b["end"]))
    lat, rtx = [], 0
    failed = {"fail-invite": 0, "fail-bye": 0}
    with open(out_path) as f:
        for line in f:
            ep, v, r = line.split()
            ep = float(ep)
            x = None if v.startswith("fail") else float(v)
            # a failed call counts when it was sent during a listing
            end = ep + (x / 1e6 if x is not None else 0)
            if not any(ep <= b and end >= a for a, b in spans):
                continue
            rtx += int(r)
            if x is None:
                failed[v] += 1
            else:
                lat.append(x)
    print(json.dumps(summary(lat, failed, rtx)))
    return 0


def main(argv):
    if len(argv) == 3 and argv[0] == "during":
        return during(argv[1], argv[2])
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    pport, uasport, uacport = int(argv[0]), int(argv[1]), int(argv[2])
    rate, seconds = float(argv[3]), float(argv[4])
    out_path = argv[5]
    proxy = ("127.0.0.1", pport)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", uacport))
    s.setblocking(False)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    u.bind(("127.0.0.1", uasport))
    u.setblocking(False)
    uas_contact = "sip:uas@127.0.0.1:%d" % uasport
    me = "127.0.0.1:%d" % uacport
    tag = "lat%d" % os.getpid()
    calls = {}    # Call-ID -> Call
    pending = {}  # the calls not finished yet
    byes = []     # (due, Call-ID), in order
    n_total = int(rate * seconds)
    t_start = time.perf_counter()
    epoch0 = time.time() - t_start
    sent = 0
    next_check = 0.0

    def send(c, data):
        s.sendto(data, proxy)
        c.msg = data

    def in_dialog(c, cid, method, cseq):
        routes = ", ".join(c.rr)
        return ("%s %s SIP/2.0\r\n"
                "Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d-%s;rport\r\n"
                "%s"
                "From: <sip:l%d@%s>;tag=%s-%d\r\n"
                "To: %s\r\n"
                "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n") % (
            method, c.target, me, tag, c.i, method, ("Route: %s\r\n" % routes) if routes else "",
            c.i, me, tag, c.i, c.to, cid, cseq, method)

    while True:
        now = time.perf_counter()
        while sent < n_total and now - t_start >= sent / rate:  # calls on schedule
            cid = "%s-%d@127.0.0.1" % (tag, sent)
            msg = ("INVITE sip:service@127.0.0.1:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d-1;rport\r\n"
                   "From: <sip:l%d@%s>;tag=%s-%d\r\n"
                   "To: <sip:service@127.0.0.1:%d>\r\n"
                   "Call-ID: %s\r\nCSeq: 1 INVITE\r\n"
                   "Contact: <sip:lat@%s>\r\nMax-Forwards: 70\r\n"
                   "Content-Length: 0\r\n\r\n") % (uasport, me, tag, sent, sent, me, tag, sent,
                                                  uasport, cid, me)
            c = Call(sent, time.perf_counter(), None)
            calls[cid] = pending[cid] = c
            send(c, msg.encode())
            sent += 1
        while byes and byes[0][0] <= now:
            _, cid = byes.pop(0)
            c = calls[cid]
            if c.state == "bye":
                c.t_bye = now
                c.interval, c.next_rtx = T1, now + T1
                send(c, in_dialog(c, cid, "BYE", 2).encode())
        if now >= next_check:  # retransmissions and time-outs, every 50 ms
            next_check = now + 0.05
            for cid, c in list(pending.items()):
                if c.state not in ("invite", "bye"):
                    del pending[cid]
                elif c.state == "invite" and now - c.t0 > TIMEOUT:
                    c.state = "fail-invite"
                elif c.t_bye is not None and now - c.t_bye > TIMEOUT:
                    c.state = "fail-bye"
                elif c.next_rtx is not None and now >= c.next_rtx and \
                        (c.state == "invite" or c.t_bye is not None):
                    s.sendto(c.msg, proxy)
                    c.rtx += 1
                    c.interval = min(c.interval * 2, 4.0)
                    c.next_rtx = now + c.interval
            if sent >= n_total and not pending:
                break
        nxt = t_start + sent / rate if sent < n_total else now + 0.05
        if byes:
            nxt = min(nxt, byes[0][0])
        nxt = min(nxt, next_check)
        r, _, _ = select.select([s, u], [], [], max(0.0, nxt - time.perf_counter()))
        if u in r:
            while True:
                try:
                    data, addr = u.recvfrom(65536)
                except BlockingIOError:
                    break
                uas(u, data, addr, uas_contact)
        while s in r:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                break
            t = time.perf_counter()
            msg = data.decode(errors="replace")
            if not msg.startswith("SIP/2.0 "):
                continue  # no request is expected
            code = int(msg[8:11])
            cid = header(msg, "Call-ID", "i")
            cseq = header(msg, "CSeq") or ""
            c = calls.get(cid)
            if c is None:
                continue
            if cseq.endswith("INVITE"):
                if c.state == "invite":
                    c.next_rtx = None  # a reply came: no more INVITE retransmissions
                if code < 200:
                    continue
                if code >= 300:
                    if c.state == "invite":
                        c.state = "fail-invite"
                    continue
                if c.lat is None:
                    c.lat = t - c.t0
                    rr = re.findall(r"^Record-Route[ \t]*:[ \t]*(.*?)\r$", msg, re.M | re.I)
                    c.rr = [x.strip() for v in rr for x in v.split(",")]
                    ct = header(msg, "Contact", "m") or ""
                    m = re.search(r"<([^>]*)>", ct)
                    c.target = m.group(1) if m else ct.strip()
                    c.to = header(msg, "To", "t")
                    c.state = "bye"
                    byes.append((t + PAUSE, cid))
                # the ACK, again for a retransmitted 200
                s.sendto(in_dialog(c, cid, "ACK", 1).encode(), proxy)
            elif cseq.endswith("BYE") and code >= 200 and c.state == "bye":
                c.state = "done"

    lat = []
    failed = {"fail-invite": 0, "fail-bye": 0}
    rtx = 0
    with open(out_path, "w") as f:
        for c in sorted(calls.values(), key=lambda c: c.i):
            ep = epoch0 + c.t0
            rtx += c.rtx
            if c.state != "done":
                st = c.state if c.state in failed else ("fail-invite" if c.lat is None else "fail-bye")
                failed[st] += 1
                f.write("%.6f %s %d\n" % (ep, st, c.rtx))
            else:
                f.write("%.6f %.0f %d\n" % (ep, c.lat * 1e6, c.rtx))
                lat.append(c.lat * 1e6)
    print(json.dumps(summary(lat, failed, rtx)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
