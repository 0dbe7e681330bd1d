"""Transaction and routing cases that need an endpoint driven message by message.

The callers and callees here are sippeer peers (UDP or TCP, on 127.0.0.1
or [::1]), so that a test chooses what each side sends and when: a 6xx
while another branch rings, a 200 that crosses the proxy's CANCEL, a
CANCEL before any provisional, a silent next hop, the Route sets of strict
routers (RFC 3261 §16.4 and §16.6 step 7), a caller with no listener that
only its TCP connection reaches. Every assertion is on what the peers
received.
"""

from __future__ import annotations

import socket
import time

import pytest

import conftest
from sippeer import (Peer, acking_caller, answers_invite, cancel_for, finals, first_time, is_final, is_request,
                     is_response, reply, request, ringing_callee, ringing_then)
from sipwire import Msg, uri_hostport, uri_of, via_sent_by


# --------------------------------------------------------------------------
# forking: §16.7 step 6 (a 6xx wins and cancels), step 10 (every 2xx relayed)
# --------------------------------------------------------------------------
def test_6xx_cancels_the_other_branches(proxy, peers):
    callee_a = peers("a", ringing_then("a", 603, "Decline", 0.5))
    callee_b = peers("b", ringing_callee("b"))
    p = proxy("fork.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller), p.port)

    final = caller.wait_for(is_final("INVITE"), "final response")
    assert (final.code, final.reason) == (603, "Decline"), final
    ack_b = callee_b.wait_for(is_request("ACK"), "ACK of the 487")
    ack_a = callee_a.wait_for(is_request("ACK"), "ACK of the 603")
    time.sleep(0.5)  # anything else the proxy would send arrives now

    inv_b = callee_b.wait_for(is_request("INVITE"), "INVITE")
    cancel = callee_b.wait_for(is_request("CANCEL"), "CANCEL after the 603")
    assert cancel.top_branch == inv_b.top_branch and ack_b.top_branch == inv_b.top_branch
    assert cancel.at > callee_a.sent[-1].at, "B was cancelled before A declined"
    inv_a = callee_a.wait_for(is_request("INVITE"), "INVITE")
    assert ack_a.top_branch == inv_a.top_branch, "the proxy's ACK of a 603 has the branch of its INVITE"
    assert [m.code for m in finals(caller)] == [603], "the 487 of the cancelled branch reached the caller"
    assert not [m for m in callee_a.received if m.method == "CANCEL"], "the declining branch was cancelled"


def test_disable_6xx_and_no_100(proxy, peers):
    # t_set_disable_6xx(1): A's 603 cancels nothing, B rings on and answers
    # 486; the 603 still wins the final choice, once B has answered.
    # t_set_auto_inv_100(0): no 100 Trying of the proxy's. As Kamailio 5.6.
    callee_a = peers("a", answers_invite(603, "Decline"))
    callee_b = peers("b", ringing_then("b", 486, "Busy Here", 0.8))
    p = proxy("fork.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller, extra=["X-Disable-6xx: 1", "X-No-100: 1"]), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response")
    assert (final.code, final.reason) == (603, "Decline"), final
    b_final = next(m for m in callee_b.sent if m.code == 486)
    assert final.at > b_final.at, "the 603 went up before B had answered"
    assert not [m for m in callee_b.received if m.method == "CANCEL"], "B was cancelled"
    assert not [m for m in caller.received if m.code == 100], "a 100 Trying was sent"


@pytest.mark.parametrize("a,b,best", [
    # §16.7 step 6: within the 4xx, a reply that lets the caller try again
    # (401, 407, 415, 420, 484) first; else, as Kamailio, the lowest code;
    # the lowest class before that
    ((486, "Busy Here"), (401, "Unauthorized"), 401), ((486, "Busy Here"), (404, "Not Found"), 404),
    ((404, "Not Found"), (407, "Proxy Authentication Required"), 407), ((500, "Oops"), (486, "Busy Here"), 486),
    ((480, "Temporarily Unavailable"), (420, "Bad Extension"), 420), ((302, "Moved"), (401, "Unauthorized"), 302),
])
def test_best_final_reply(proxy, peers, a, b, best):
    callee_a = peers("a", answers_invite(*a))
    callee_b = peers("b", answers_invite(*b, delay=0.2))
    p = proxy("fork.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response")
    assert final.code == best, final
    assert [m.code for m in finals(caller)] == [best]


def challenging(code: int, reason: str, line: str, delay: float = 0):
    """A callee that answers each INVITE code with header line (a challenge)."""
    def on_message(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, code, reason, "t", delay=delay, extra=[line])

    return on_message


def test_challenges_of_every_branch(proxy, peers):
    # §16.7 step 7: the 401 chosen carries the 407's challenge too (as on
    # Kamailio 5.6, which builds a reply of its own with both)
    www = 'Digest realm="a.test", nonce="n1"'
    prx = 'Digest realm="b.test", nonce="n2"'
    callee_a = peers("a", challenging(401, "Unauthorized", f"WWW-Authenticate: {www}"))
    callee_b = peers("b", challenging(407, "Proxy Authentication Required", f"Proxy-Authenticate: {prx}", 0.2))
    p = proxy("fork.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response")
    assert final.code == 401, final
    assert final.all("www-authenticate") == [www], final.raw
    assert final.all("proxy-authenticate") == [prx], final.raw


def test_every_2xx_is_relayed(proxy, peers):
    callee_a = peers("a", ringing_then("a", 200, "OK", 0.3))
    # B's 200 was on its way when the proxy's CANCEL (sent after A's 200)
    # arrived: it must reach the caller too
    callee_b = peers("b", ringing_callee("b", answers_as_cancel_comes=True))
    p = proxy("fork.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = peers("caller")
    caller.send(request("INVITE", callee_a.uri, caller), p.port)

    caller.wait_for(lambda m: is_response(200, "INVITE")(m) and "tag=b" in m.get("to"), "B's 200")
    oks = {m.get("to").rsplit("tag=", 1)[1]: m for m in caller.received if is_response(200, "INVITE")(m)}
    assert set(oks) == {"a", "b"}, f"both 200s must reach the caller: {list(oks)}"

    # the caller ACKs each 2xx along its route set: each ACK reaches its callee
    for tag, callee in (("a", callee_a), ("b", callee_b)):
        ok = oks[tag]
        routes = list(reversed(ok.all("record-route")))
        assert routes and uri_hostport(uri_of(routes[0])) == ("127.0.0.1", p.port), routes
        caller.send(request("ACK", uri_of(ok.get("contact")), caller, call_id=ok.call_id, to=ok.get("to"),
                            routes=routes), p.port)
        ack = callee.wait_for(is_request("ACK"), f"ACK of {tag}'s 200")
        assert len(ack.vias) == 2 and ack.get("to") == ok.get("to"), ack.raw
    assert not [m for m in callee_a.received if m.method == "CANCEL"], "A answered first: nothing to cancel there"


# --------------------------------------------------------------------------
# CANCEL and timers of a branch (RFC 3261 §9.1, §17.1.1.2, §17.1.2.2)
# --------------------------------------------------------------------------
def test_cancel_waits_for_a_provisional(proxy, peers):
    def rings_late(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 180, "Ringing", "late", delay=1.2)
        elif is_request("CANCEL")(m) and first_time(peer, m):
            invite = next(r for r in peer.received if is_request("INVITE")(r))
            peer.answer(m, 200, "OK")
            peer.answer(invite, 487, "Request Terminated", "late")

    callee = peers("callee", rings_late)
    p = proxy("default.lua")
    caller = acking_caller(peers)
    invite = request("INVITE", callee.uri, caller)
    caller.send(invite, p.port)
    callee.wait_for(is_request("INVITE"), "INVITE")
    caller.send(cancel_for(invite), p.port)

    caller.wait_for(is_response(200, "CANCEL"), "200 for the CANCEL")
    final = caller.wait_for(is_final("INVITE"), "final response", timeout=15)
    assert final.code == 487, final
    callee.wait_for(is_request("ACK"), "ACK of the 487")
    ringing = next(s for s in callee.sent if s.code == 180)
    got = callee.wait_for(is_request("CANCEL"), "CANCEL")
    assert got.at >= ringing.at, "CANCEL sent down before the branch had a provisional (§9.1)"


SIGNATURE = {"server_header": "Server: imsdlg-test/1", "user_agent_header": "User-Agent: imsdlg-ua/1"}


def test_server_and_user_agent_headers(proxy, peers):
    # Kamailio's server_header on the replies the proxy sends itself (100
    # Trying, 200 for a CANCEL, an sl reply); not user_agent_header on the
    # CANCEL it relays (as Kamailio 5.6: only on requests it originates,
    # test_dialog.py); relayed messages keep their own
    def rings(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 180, "Ringing", "c1")
        elif is_request("CANCEL")(m) and first_time(peer, m):
            invite = next(r for r in peer.received if is_request("INVITE")(r))
            peer.answer(m, 200, "OK")
            peer.answer(invite, 487, "Request Terminated", "c1")

    callee = peers("callee", rings)
    p = proxy("default.lua", core=SIGNATURE)
    caller = acking_caller(peers)
    invite = request("INVITE", callee.uri, caller)
    caller.send(invite, p.port)
    trying = caller.wait_for(is_response(100, "INVITE"), "100 Trying")
    ringing = caller.wait_for(is_response(180, "INVITE"), "180")
    caller.send(cancel_for(invite), p.port)
    ok = caller.wait_for(is_response(200, "CANCEL"), "200 for the CANCEL")
    cancel = callee.wait_for(is_request("CANCEL"), "the CANCEL sent down")
    assert caller.wait_for(is_final("INVITE"), "487").code == 487
    assert trying.get("server") == ok.get("server") == "imsdlg-test/1"
    assert ringing.get("server") is None, "a relayed reply is the callee's"
    assert cancel.get("user-agent") is None
    assert callee.wait_for(is_request("INVITE"), "INVITE").get("user-agent") is None

    # server_signature=no: neither
    p2 = proxy("default.lua", core={**SIGNATURE, "server_signature": 0}, name="unsigned")
    caller.send(request("OPTIONS", f"sip:nobody@127.0.0.1:{p2.port}", caller, to="<sip:x@y>;tag=t"), p2.port)
    got = caller.wait_for(lambda m: not m.is_request and m.cseq_method == "OPTIONS", "the OPTIONS' answer")
    assert got.get("server") is None


# The local 500 Kamailio sends when a failure route dropped every reply
# and started no new branch ("I'm terribly sorry, server error occurred
# (1/TM)"; imsdlgd says "Server Internal Error"), told from B's 503
# relayed as a 500 by its reason phrase.
LOCAL_500 = (500, None)
B_503 = (500, "Service Unavailable")


@pytest.mark.parametrize("mode,drop,retry,expect", [
    # A answers 486, the failure route forks to B, which answers 503: with
    # Kamailio's default (3) the caller gets the new step's reply (the 503
    # as a 500, RFC 3261 §16.7 step 6); with 0 the earlier 486 still
    # competes and wins (lower class)
    (3, "", 486, B_503), (0, "", 486, (486, "Busy Here")),
    # 1 and 2 drop at every failure route, forking or not: after B's 503
    # nothing is left
    (1, "", 486, LOCAL_500), (2, "", 486, LOCAL_500),
    # no new step: 3 keeps A's 486, 1 and t_drop_replies() do not
    (3, "", 0, (486, "Busy Here")), (1, "", 0, LOCAL_500),
    (3, 'KSR.tm.t_drop_replies("a")', 0, LOCAL_500), (3, "KSR.tm.t_drop_replies_all()", 0, LOCAL_500),
    (3, 'KSR.tm.t_drop_replies("l")', 0, LOCAL_500),
    # "n": A's 486 outlives the new step (and B's 503)
    (3, 'KSR.tm.t_drop_replies("n")', 486, (486, "Busy Here")),
    (1, 'KSR.tm.t_drop_replies("n")', 486, (486, "Busy Here")),
    # "l" drops the last step's replies only: after A's (at the first
    # route) and B's (at the second) none is left
    (0, 'KSR.tm.t_drop_replies("l")', 486, LOCAL_500),
])
def test_failure_reply_mode(proxy, peers, mode, drop, retry, expect):
    # As on Kamailio 5.6 (run with IMSDLG_PROXY=kamailio).
    callee_b = peers("callee_b", answers_invite(503, "Service Unavailable"))
    callee_a = peers("callee_a", answers_invite(486, "Busy Here"))
    p = proxy("serial.lua", subst={"UAS_B_PORT": callee_b.port, "RETRY_CODE": retry, "DROP": drop},
              modparams={("tm", "failure_reply_mode"): mode})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "the final reply")
    if retry:
        callee_b.wait_for(is_request("INVITE"), "the second step's INVITE")
    code, reason = expect
    assert final.code == code, final
    if reason is None:
        assert final.reason != B_503[1], final
    else:
        assert final.reason == reason, final


def test_branch_flags(proxy, peers):
    # flags 3 and 7 on the Request-URI's branch; the appended branch took
    # 3 when appended, then got 5; each branch route sees its own and sets
    # 9, which its replies' onreply routes and the failure route see
    callee_b = peers("callee_b", answers_invite(500, "Server Error"))
    callee_a = peers("callee_a", answers_invite(486, "Busy Here"))
    p = proxy("bflags.lua", subst={"UAS_B_PORT": callee_b.port})
    caller = acking_caller(peers)
    caller.send(request("INVITE", callee_a.uri, caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "the failure route's reply")
    a = callee_a.wait_for(is_request("INVITE"), "INVITE at A")
    b = callee_b.wait_for(is_request("INVITE"), "INVITE at B")
    # (each branch has its branch route's header alone: none leaks into the next)
    assert a.all("x-bf") == [f"{1 << 3 | 1 << 7},false,true"], a.all("x-bf")
    assert b.all("x-bf") == [f"{1 << 3 | 1 << 5},true,true"], b.all("x-bf")
    with_9a, with_9b = 1 << 3 | 1 << 7 | 1 << 9, 1 << 3 | 1 << 5 | 1 << 9
    assert (final.code, final.reason) == (599, f"bf={with_9a} r486={with_9a} r500={with_9b}"), final.reason


def silent_next_hop_case(proxy, peers, method: str):
    callee = peers("silent")
    p = proxy("default.lua")
    caller = acking_caller(peers)
    t0 = time.monotonic()
    caller.send(request(method, callee.uri, caller), p.port)
    final = caller.wait_for(is_final(method), "final response", timeout=15)
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    copies = [m for m in callee.received if is_request(method)(m)]
    return final, elapsed, copies, callee


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_silent_next_hop_408(proxy, peers, method):
    # fr_timer 2 s (conftest): Timer A / E retransmit at 0.5 s and 1.5 s
    final, elapsed, copies, callee = silent_next_hop_case(proxy, peers, method)
    assert final.code == 408, final
    assert 1.5 < elapsed < 8, f"408 after {elapsed:.1f} s"
    assert len(copies) >= 3, f"Timer {'A' if method == 'INVITE' else 'E'}: {len(copies)} copies"
    assert len({m.top_branch for m in copies}) == 1, "a retransmission is the same request"
    assert not [m for m in callee.received if m.method == "CANCEL"], "no CANCEL without a provisional (§9.1)"


def test_unreachable_next_hop_503(proxy, peers):
    closed = conftest.free_port()  # nothing listens there over TCP
    p = proxy("default.lua")
    caller = acking_caller(peers)
    caller.send(request("INVITE", f"sip:nobody@127.0.0.1:{closed};transport=tcp", caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response", timeout=10)
    # Kamailio connects before t_relay() returns, which then fails: the
    # script answers 500. imsdlgd connects after it and fails the branch.
    assert final.code == (500 if p.kind == "kamailio" else 503), final


def test_2xx_retransmissions_and_stray_responses_relayed(proxy, peers):
    # The callee repeats its 200 until an ACK comes (§13.3.1.4): each copy
    # must reach the caller. A response that matches no transaction is
    # relayed statelessly by its next Via (§16.7 step 1 / §16.11).
    def answers(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            for delay in (0, 0.5, 1.5):
                peer.answer(m, 200, "OK", "callee", delay=delay)

    callee = peers("callee", answers)
    p = proxy("default.lua")
    caller = peers("caller")
    caller.send(request("INVITE", callee.uri, caller, call_id="again@test"), p.port)
    deadline = time.monotonic() + 5
    while len([m for m in caller.received if is_response(200, "INVITE")(m)]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len([m for m in caller.received if is_response(200, "INVITE")(m)]) == 3, caller.received

    stray = "\r\n".join([
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/UDP 127.0.0.1:{p.port};branch=z9hG4bK-never-sent",
        f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-stray",
        "From: <sip:a@example.com>;tag=1", "To: <sip:b@example.com>;tag=2", "Call-ID: stray@test",
        "CSeq: 1 INVITE", "Content-Length: 0", "", ""])
    callee.send(stray, p.port)
    got = caller.wait_for(lambda m: m.call_id == "stray@test", "the stray 200")
    assert got.vias == [f"SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK-stray"], got.raw


# --------------------------------------------------------------------------
# strict routers (RFC 3261 §16.4, §16.6 step 7, the example of §16.12.1.2)
# --------------------------------------------------------------------------
def established_call(proxy, peers):
    """A call caller -> proxy -> callee, answered; returns (proxy, caller, callee, 200)."""
    def answers(peer: Peer, m: Msg) -> None:
        if m.is_request and m.method in ("INVITE", "BYE") and first_time(peer, m):
            peer.answer(m, 200, "OK", "callee")

    callee = peers("callee", answers)
    p = proxy("default.lua")
    caller = peers("caller")
    caller.send(request("INVITE", callee.uri, caller, call_id="strict@test"), p.port)
    ok = caller.wait_for(is_response(200, "INVITE"), "200")
    return p, caller, callee, ok


def bye(caller: Peer, ok: Msg, ruri: str, routes: list[str]) -> str:
    return request("BYE", ruri, caller, call_id=ok.call_id, cseq=2, to=ok.get("to"), routes=routes)


def test_previous_hop_strict_router(proxy, peers):
    # §16.4: a strict router before us sent the request to our Record-Route
    # URI, which it put into the Request-URI; the remote target is the last
    # Route value. Our URI carries ;lr, as a strict router copies it.
    p, caller, callee, ok = established_call(proxy, peers)
    ours = uri_of(ok.get("record-route"))
    target = uri_of(ok.get("contact"))
    caller.send(bye(caller, ok, ours, [f"<{target}>"]), p.port)
    got = callee.wait_for(is_request("BYE"), "BYE")
    assert got.ruri == target, got.raw
    assert got.all("route") == [], got.raw
    assert via_sent_by(got.vias[0]) == ("127.0.0.1", p.port), got.vias


def test_previous_hop_strict_next_hop_loose(proxy, peers):
    p, caller, callee, ok = established_call(proxy, peers)
    next_proxy = peers("next")
    ours = uri_of(ok.get("record-route"))
    target = uri_of(ok.get("contact"))
    loose = f"<sip:127.0.0.1:{next_proxy.port};lr>"
    caller.send(bye(caller, ok, ours, [loose, f"<{target}>"]), p.port)
    got = next_proxy.wait_for(is_request("BYE"), "BYE at the next proxy")
    assert got.ruri == target, got.raw
    assert got.all("route") == [loose], got.raw


def test_next_hop_strict_router(proxy, peers):
    # §16.6 step 7: the next hop has no ;lr: it gets the request with its
    # URI as Request-URI, and the Request-URI we had goes last into Route
    def answers_bye(peer: Peer, m: Msg) -> None:
        if is_request("BYE")(m) and first_time(peer, m):
            peer.answer(m, 200, "OK")

    p, caller, callee, ok = established_call(proxy, peers)
    strict = peers("strict", answers_bye)
    ours = ok.get("record-route")
    target = uri_of(ok.get("contact"))
    strict_uri = f"sip:127.0.0.1:{strict.port}"
    caller.send(bye(caller, ok, target, [ours, f"<{strict_uri}>"]), p.port)
    got = strict.wait_for(is_request("BYE"), "BYE at the strict router")
    assert got.ruri == strict_uri, got.raw
    assert got.all("route") == [f"<{target}>"], got.raw
    caller.wait_for(is_response(200, "BYE"), "200 for the BYE")
    assert not [m for m in callee.received if m.method == "BYE"], "the BYE skipped the strict router"


# --------------------------------------------------------------------------
# TCP connections (RFC 3261 §18): replies and requests go over the ones open
# --------------------------------------------------------------------------
def test_tcp_connections_reused(proxy, peers):
    # The caller has no listener: its Via and Contact name the local port of
    # its connection to the proxy, so the callee's BYE reaches it only over
    # that connection. The callee hangs up over the connection the proxy
    # opened to it.
    def callee_side(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m):
            peer.answer(m, 200, "OK", "callee")
        elif is_request("ACK")(m):
            inv = peer.wait_for(is_request("INVITE"), "INVITE")
            to = inv.get("to") + ";tag=callee"
            lines = [f"BYE {uri_of(inv.get('contact'))} SIP/2.0",
                     f"Via: SIP/2.0/TCP 127.0.0.1:{peer.port};branch=z9hG4bK-callee-bye",
                     "Max-Forwards: 70", f"From: {to}", f"To: {inv.get('from')}", f"Call-ID: {inv.call_id}",
                     "CSeq: 1 BYE"]
            lines += [f"Route: {rr}" for rr in inv.all("record-route")]
            peer.send("\r\n".join(lines + ["Content-Length: 0", "", ""]), m.conn)

    def caller_side(peer: Peer, m: Msg) -> None:
        if is_response(200, "INVITE")(m):
            routes = list(reversed(m.all("record-route")))
            peer.send(request("ACK", uri_of(m.get("contact")), peer, call_id=m.call_id, to=m.get("to"),
                              routes=routes), m.conn)
        elif is_request("BYE")(m):
            peer.answer(m, 200, "OK")

    callee = peers.tcp("callee", callee_side)
    p = proxy("default.lua")
    caller = peers.tcp("caller", caller_side, connect_to=p.port)
    caller.send(request("INVITE", callee.uri, caller, call_id="tcp-reuse@test"))

    ok = callee.wait_for(is_response(200, "BYE"), "200 for the callee's BYE")
    bye = caller.wait_for(is_request("BYE"), "the callee's BYE, over the caller's connection")
    inv = callee.wait_for(is_request("INVITE"), "INVITE")
    ack = callee.wait_for(is_request("ACK"), "ACK")
    assert bye.conn is caller.sock and bye.get("call-id") == "tcp-reuse@test"
    assert callee.accepted == 1, f"the proxy opened {callee.accepted} connections to the callee"
    assert ack.conn is inv.conn and ok.conn is inv.conn
    assert via_sent_by(bye.vias[0]) == ("127.0.0.1", p.port) and bye.vias[0].startswith("SIP/2.0/TCP")


# --------------------------------------------------------------------------
# is_myself(), is_myself_ruri/furi/turi/srcip()
# --------------------------------------------------------------------------
def test_is_myself_of_each_address(proxy, peers):
    p = proxy("myself.lua")
    asker = peers("asker")
    ours, other = f"sip:me@127.0.0.1:{p.port}", f"sip:me@127.0.0.1:{asker.port}"
    cases = [  # Request-URI, To, X-Uri, is X-Uri ours -> the answers about them
        (ours, other, ours, True),
        (other, ours, f"sip:127.0.0.1:{p.port};transport=tcp", True),
        (other, other, f"sip:127.0.0.2:{p.port}", False),
        (other, other, "sip:127.0.0.1", True),  # no port: any (as Kamailio's)
        (other, other, "sip:127.0.0.1:5060", False),
    ]
    for n, (ruri, to, uri, uri_ours) in enumerate(cases, 1):
        asker.send(request("OPTIONS", ruri, asker, cseq=n, to=f"<{to}>", extra=[f"X-Uri: {uri}"]), p.port)
        got = asker.wait_for(lambda m, n=n: is_response(200, "OPTIONS")(m) and m.cseq_num == n, f"answer {n}")
        seen = {k: got.get(f"x-myself-{k}") for k in ("ruri", "furi", "turi", "srcip", "uri")}
        assert seen == {"ruri": str(ruri == ours).lower(), "furi": "false", "turi": str(to == ours).lower(),
                        "srcip": "true", "uri": str(uri_ours).lower()}, (n, seen)
        kx = {k: got.get(f"x-kx-{k}") for k in ("srcport", "ruser", "duri", "pv")}
        assert kx == {"srcport": str(asker.port), "ruser": "me", "duri": "<null>", "pv": "<null>"}, (n, kx)


def test_an_alias_is_myself(proxy, peers):
    # Kamailio's alias: a name this proxy answers to, with any port unless
    # one is given, and only that transport when one is given (a URI
    # without transport matches any); is_myself() of a URI without a port
    # matches any port (checked on Kamailio 5.6)
    p = proxy("myself.lua", core={"alias": "proxy.test"}, name="any")
    p2 = proxy("myself.lua", core={"alias": conftest.Unquoted("tcp:proxy.test:5999")}, name="exact")
    asker = peers("asker")
    cases = [  # proxy, X-Uri -> is_myself(X-Uri)
        (p, "sip:me@proxy.test", "true"),
        (p, "sip:me@PROXY.test:7777;transport=tcp", "true"),
        (p, "sip:me@other.test", "false"),
        (p2, "sip:me@proxy.test:5999", "true"),  # no transport in the URI: any
        (p2, "sip:me@proxy.test:5999;transport=tcp", "true"),
        (p2, "sip:me@proxy.test:5999;transport=udp", "false"),
        (p2, "sip:me@proxy.test:5060", "false"),
        (p2, "sip:me@proxy.test", "true"),  # no port: any
        (p2, "sip:me@proxy.test;transport=udp", "false"),
    ]
    for n, (px, uri, want) in enumerate(cases, 1):
        asker.send(request("OPTIONS", f"sip:x@127.0.0.1:{px.port}", asker, cseq=n, extra=[f"X-Uri: {uri}"]),
                   px.port)
        got = asker.wait_for(lambda m, n=n: is_response(200, "OPTIONS")(m) and m.cseq_num == n, f"answer {n}")
        assert got.get("x-myself-uri") == want, (uri, got.get("x-myself-uri"))


def test_port_is_the_port_of_a_listen_without_one(proxy, peers, monkeypatch):
    # Kamailio's port=: a listen address that names no port takes it
    other = conftest.free_port()
    orig = conftest.render_cfg

    def render(kind, port, children, lua, *args, **kw):
        text = orig(kind, port, children, lua, *args, **kw)
        return text.replace(f"listen=tcp:{conftest.HOST}:{port}\n",
                            f"listen=tcp:{conftest.HOST}:{port}\nport={other}\nlisten=udp:127.0.0.2\n")

    monkeypatch.setattr(conftest, "render_cfg", render)
    p = proxy("myself.lua")
    asker = peers("asker", host="127.0.0.2")
    asker.send(request("OPTIONS", f"sip:me@127.0.0.2:{other}", asker, extra=[f"X-Uri: sip:127.0.0.2:{other}"]),
               other)
    got = asker.wait_for(is_response(200, "OPTIONS"), f"the answer from 127.0.0.2:{other}")
    assert (got.get("x-myself-ruri"), got.get("x-myself-uri")) == ("true", "true")
    assert p.alive()


def test_loose_route_takes_a_route_to_an_alias_as_ours(proxy, peers):
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    p = proxy("default.lua", core={"alias": "proxy.test"})
    caller = peers("caller")
    caller.send(request("BYE", callee.uri, caller, to=f"<{callee.uri}>;tag=callee",
                        routes=["<sip:proxy.test;lr>"]), p.port)
    got = callee.wait_for(is_request("BYE"), "BYE at the Request-URI")
    assert not got.all("route"), f"our Route went on: {got.raw}"
    caller.wait_for(is_response(200, "BYE"), "200 for the BYE")
    # loose_route() takes a Route without a port as port 5060 (RFC 3261
    # §19.1.2), unlike is_myself(): ours listens elsewhere, so such a Route
    # is another hop's, and the BYE goes there (checked on Kamailio 5.6)
    caller.send(request("BYE", callee.uri, caller, to=f"<{callee.uri}>;tag=callee", call_id="portless@test",
                        routes=["<sip:127.0.0.1;lr>"]), p.port)
    time.sleep(0.5)
    assert not [m for m in callee.received if m.call_id == "portless@test"], "a Route to port 5060 was taken as ours"


# --------------------------------------------------------------------------
# IPv6, and two Record-Route entries when a request changes sockets
# --------------------------------------------------------------------------
def test_tcp_reply_after_the_connection_closed_goes_to_the_via_port(proxy, peers):
    # RFC 3261 §18.2.2: the connection the INVITE came on is gone when the
    # final reply is ready, so the proxy opens one to the source address
    # and the port the caller's Via names (where the caller listens), not
    # to the port the caller had sent from
    callee = peers("callee", answers_invite(486, "Busy Here", delay=1.0))
    p = proxy("default.lua")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(4)
    via_port = listener.getsockname()[1]
    conn = socket.create_connection(("127.0.0.1", p.port))
    try:
        invite = (f"INVITE {callee.uri} SIP/2.0\r\n"
                  f"Via: SIP/2.0/TCP 127.0.0.1:{via_port};branch=z9hG4bK-tcp-gone\r\n"
                  "Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c\r\n"
                  f"To: <{callee.uri}>\r\nCall-ID: tcp-gone@test\r\nCSeq: 1 INVITE\r\n"
                  f"Contact: <sip:caller@127.0.0.1:{via_port};transport=tcp>\r\nContent-Length: 0\r\n\r\n")
        conn.sendall(invite.encode())
        callee.wait_for(is_request("INVITE"), "INVITE")
    finally:
        conn.close()
    try:
        back, _ = listener.accept()
        back.settimeout(3)
        data = b""
        while b"Busy Here" not in data:
            chunk = back.recv(4096)
            if not chunk:
                break
            data += chunk
        back.close()
    finally:
        listener.close()
    assert b"SIP/2.0 486 Busy Here" in data, data


def test_ipv6_and_double_record_route(proxy, peers, monkeypatch):
    # the proxy listens on 127.0.0.1 and [::1], same port; one call v6 to
    # v6, one from v4 to v6 (§16.6 step 4: each side must see an address
    # of the proxy it can reach)
    conftest.listen_also(monkeypatch, "udp", "[::1]")

    def answers(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 200, "OK", "callee")

    callee = peers("callee", answers, host="::1")
    p = proxy("default.lua")
    v6, v4 = f"sip:[::1]:{p.port}", f"sip:127.0.0.1:{p.port}"
    for caller_host, want_rr in (("::1", [v6]), ("127.0.0.1", [v6, v4])):
        caller = peers(f"caller{len(want_rr)}", host=caller_host)
        caller.send(request("INVITE", callee.uri, caller, call_id=f"v6-{len(want_rr)}@test"), p.port)
        ok = caller.wait_for(is_response(200, "INVITE"), "200")
        inv = callee.wait_for(lambda m, c=ok.call_id: is_request("INVITE")(m) and m.call_id == c, "INVITE")
        assert via_sent_by(inv.vias[0]) == ("::1", p.port), inv.vias
        rrs = [uri_of(rr) for rr in inv.all("record-route")]  # Kamailio adds ;r2=on and ;ftag=
        assert [u.split(";")[0] for u in rrs] == want_rr and all(";lr" in u for u in rrs), inv.raw
        assert ok.all("record-route") == inv.all("record-route"), ok.raw


def test_branch_ids_unique_across_workers_and_restarts(proxy, peers):
    # RFC 3261 §8.1.1.7: a next hop matches transactions by branch and
    # sent-by; 20 calls over every worker of one run, then of a second run
    # on the same address, must never repeat a branch
    def busy(peer: Peer, m: Msg) -> None:
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 486, "Busy Here", "callee")

    callee = peers("callee", busy)
    p = proxy("default.lua", name="first")
    port = p.port
    caller = acking_caller(peers)
    for run in (1, 2):
        for n in range(20):
            caller.send(request("INVITE", callee.uri, caller, call_id=f"b{run}-{n}@test"), port)
        for n in range(20):
            caller.wait_for(lambda m, c=f"b{run}-{n}@test": is_final("INVITE")(m) and m.call_id == c, "486")
        if run == 1:
            p.stop()
            p = proxy("default.lua", name="second")
            port = p.port
    invites = {m.call_id: m.top_branch for m in callee.received if is_request("INVITE")(m)}
    assert len(invites) == 40 and len(set(invites.values())) == 40, sorted(invites.items())


def test_advertised_address(proxy, peers):
    # listen=... advertise 192.0.2.10:5099 (a public address in front of
    # this one): Via and Record-Route name it, and a Route to it is ours
    def answers(peer: Peer, m: Msg) -> None:
        if m.is_request and m.method in ("INVITE", "BYE") and first_time(peer, m):
            # the advertised address is not reachable here: answer the
            # proxy where it listens
            peer.send(reply(m, 200, "OK", peer, "callee" if m.method == "INVITE" else None), p.port)

    callee = peers("callee", answers)
    p = proxy("default.lua", udp_options="advertise 192.0.2.10:5099")
    caller = peers("caller")
    caller.send(request("INVITE", callee.uri, caller, call_id="adv@test"), p.port)
    ok = caller.wait_for(is_response(200, "INVITE"), "200")
    inv = callee.wait_for(is_request("INVITE"), "INVITE")
    assert via_sent_by(inv.vias[0]) == ("192.0.2.10", 5099), inv.vias
    assert [uri_of(rr).split(";")[0] for rr in inv.all("record-route")] == ["sip:192.0.2.10:5099"], inv.raw
    caller.send(request("BYE", uri_of(ok.get("contact")), caller, call_id="adv@test", cseq=2, to=ok.get("to"),
                        routes=ok.all("record-route")), p.port)
    bye = callee.wait_for(is_request("BYE"), "BYE, loose-routed")
    assert bye.all("route") == [] and via_sent_by(bye.vias[0]) == ("192.0.2.10", 5099), bye.raw
    caller.wait_for(is_response(200, "BYE"), "200 for the BYE")


def test_ipv6_over_tcp(proxy, peers, monkeypatch):
    # a whole call over TCP on [::1]: one connection to the callee, reused
    conftest.listen_also(monkeypatch, "tcp", "[::1]")

    def callee_side(peer: Peer, m: Msg) -> None:
        if m.is_request and m.method in ("INVITE", "BYE") and first_time(peer, m):
            peer.answer(m, 200, "OK", "callee" if m.method == "INVITE" else None)

    callee = peers.tcp("callee", callee_side, host="::1")
    p = proxy("default.lua")
    caller = peers.tcp("caller", connect_to=p.port, host="::1")
    caller.send(request("INVITE", callee.uri, caller, call_id="v6-tcp@test"))
    ok = caller.wait_for(is_response(200, "INVITE"), "200")
    rrs = [uri_of(rr) for rr in ok.all("record-route")]
    assert len(rrs) == 1 and rrs[0].startswith(f"sip:[::1]:{p.port};") and "transport=tcp" in rrs[0], rrs
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        caller.send(request(method, uri_of(ok.get("contact")), caller, call_id="v6-tcp@test", cseq=cseq,
                            to=ok.get("to"), routes=list(reversed(ok.all("record-route")))))
    caller.wait_for(is_response(200, "BYE"), "200 for the BYE")
    assert [m.method for m in callee.received] == ["INVITE", "ACK", "BYE"], callee.received
    assert callee.accepted == 1 and via_sent_by(callee.received[0].vias[0]) == ("::1", p.port)


def test_request_looping_through_the_proxy_ends_at_once(proxy, peers):
    # An OPTIONS for the proxy's own address: default.lua relays it to
    # itself hop after hop. The hop where Max-Forwards runs out answers
    # 483 (the Via limit, 72, leaves room for 70 hops), and that answer
    # must travel back through every hop, each adding nothing to wait,
    # instead of each hop waiting for fr_timer and answering 408. Kamailio
    # gives 483 too.
    p = proxy("default.lua", modparams={("tm", "fr_timer"): 10000})
    caller = peers("caller")
    t0 = time.monotonic()
    caller.send(request("OPTIONS", f"sip:127.0.0.1:{p.port}", caller, call_id="loop@test"), p.port)
    final = caller.wait_for(is_final("OPTIONS"), "final response", timeout=15)
    took = time.monotonic() - t0
    assert final.code == 483 and took < 5, (final, took)
    assert len(final.vias) == 1, final.raw


# --------------------------------------------------------------------------
# force_rport(): a client behind NAT whose Via names a port it cannot be
# reached on
# --------------------------------------------------------------------------
def test_force_rport(proxy, peers):
    # the caller's Via says port 9; only its source port reaches it. Without
    # force_rport() the answer goes to port 9 (lost); with it, stateless and
    # relayed answers reach the source port, and the relayed INVITE's Via
    # carries rport and received
    def callee_side(peer, m):
        if is_request("INVITE")(m) and first_time(peer, m):
            peer.answer(m, 486, "Busy Here", "callee")

    callee = peers("callee", callee_side)
    p = proxy("rport.lua")
    caller = acking_caller(peers)

    def natted(method, n, forced):
        text = request(method, callee.uri, caller, cseq=n, call_id=f"rport-{method}-{n}@test",
                       extra=["X-Force-Rport: 1"] if forced else [])
        return text.replace(f"SIP/2.0/UDP {caller.hostport};", "SIP/2.0/UDP 127.0.0.1:9;", 1)

    caller.send(natted("OPTIONS", 1, False), p.port)
    time.sleep(1)
    assert not [m for m in caller.received if m.cseq_num == 1], "answered at the source port without rport"
    caller.send(natted("OPTIONS", 2, True), p.port)
    assert caller.wait_for(lambda m: is_response(200, "OPTIONS")(m) and m.cseq_num == 2, "200").code == 200

    caller.send(natted("INVITE", 3, True), p.port)
    invite = callee.wait_for(is_request("INVITE"), "INVITE at the callee")
    assert f";rport={caller.port}" in invite.vias[1], invite.vias
    if conftest.PROXY_KIND == "imsdlgd":
        # RFC 3581 §4: received too, even when it equals the sent-by host
        # (Kamailio 5.6 leaves it out)
        assert ";received=127.0.0.1" in invite.vias[1], invite.vias
    busy = caller.wait_for(lambda m: is_final("INVITE")(m) and m.cseq_num == 3, "486 at the source port")
    assert busy.code == 486
