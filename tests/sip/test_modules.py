"""Kamailio's sanity module (KSR.sanity), tmx's route tests and precheck
(KSR.tmx), xlog (KSR.xlog), textops' search and header functions and
siputils' is_first_hop(), on the wire.

Each request below reaches the script (sip_msg_check() lets it through, as
Kamailio's core does), so what is asserted is what sanity_check() itself
finds: octets after a UDP body, a Proxy-Require extension proxy_require
does not list, digest credentials without their parameters, a second tag.
The same script runs on Kamailio 5.6 (IMSDLG_PROXY=kamailio).
"""

from __future__ import annotations

import socket
import time

import pytest

import conftest
from sippeer import Peer, answers_invite, is_final, is_request, is_response, request

SANE = {("sanity", "proxy_require"): "foo, bar"}


def options(asker: Peer, p, n: int, checks: int | None, extra: list[str] | None = None,
            uri_checks: int | None = None) -> str:
    hdrs = [] if checks is None else [f"X-Checks: {checks}"]
    if uri_checks is not None:
        hdrs.append(f"X-Uri-Checks: {uri_checks}")
    return request("OPTIONS", f"sip:x@127.0.0.1:{p.port}", asker, cseq=n, extra=hdrs + list(extra or []))


def answer_to(asker: Peer, n: int, timeout: float = 5):
    return asker.wait_for(lambda m: not m.is_request and m.cseq_num == n, f"the answer to request {n}",
                          timeout=timeout)


def no_answer_to(asker: Peer, n: int, p, wait: float = 1.0) -> None:
    time.sleep(wait)
    got = [m for m in asker.received if not m.is_request and m.cseq_num == n]
    assert got == [], f"request {n} should get no reply: {got}"


def with_body(text: str, body: str, claimed: int) -> str:
    """text (ending with Content-Length: 0 and the empty line) with body
    after it and Content-Length: claimed."""
    head = text[: text.rindex("Content-Length: 0")]
    return f"{head}Content-Type: text/plain\r\nContent-Length: {claimed}\r\n\r\n{body}"


def test_sane_request_and_first_hop(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(options(asker, p, 1, None), p.port)
    got = answer_to(asker, 1)
    assert (got.code, got.reason) == (200, "Sane")
    assert got.get("x-first-hop") == "1"
    assert got.get("x-routes") == "req=1,fail=-1,branch=-1,reply=-1"
    # is_TLS, is_WS, is_IPv4, is_IPv6, is_src_port($sp), is_dst_port($Rp),
    # issflagset(4) after setsflag(4), issflagset(5), is_myself_suri(),
    # get_debug()
    assert got.get("x-core") == "false,false,true,false,true,true,true,false,false,2"
    # a request that came through another hop: two Vias
    text = options(asker, p, 2, 1).replace("\r\nMax-Forwards:",
                                           "\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-up\r\nMax-Forwards:", 1)
    asker.send(text, p.port)
    assert answer_to(asker, 2).get("x-first-hop") == "-1"


def test_content_length_must_end_the_datagram(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(with_body(options(asker, p, 1, 128), "abcd", 4), p.port)
    assert answer_to(asker, 1).code == 200
    # RFC 3261 §18.3: the proxy itself takes the first 4 octets as the
    # body; sanity_check(128) refuses the datagram that had more
    asker.send(with_body(options(asker, p, 2, 128), "abcdEXTRA", 4), p.port)
    got = answer_to(asker, 2)
    assert (got.code, got.reason) == (400, "Content-Length mis-match")
    # without check 128 the same datagram passes
    asker.send(with_body(options(asker, p, 3, 64), "abcdEXTRA", 4), p.port)
    assert answer_to(asker, 3).code == 200


def test_proxy_require_lists_supported_extensions(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(options(asker, p, 1, 512, ["Proxy-Require: foo", "Proxy-Require: bar"]), p.port)
    assert answer_to(asker, 1).code == 200
    # on imsdlgd the core refuses it (RFC 3261 §16.3 step 5) before the
    # script ("Bad Extension"), on Kamailio sanity_check(512) does ("Bad
    # Proxy Require Extension")
    asker.send(options(asker, p, 2, 512, ["Proxy-Require: foo, baz"]), p.port)
    got = answer_to(asker, 2)
    assert (got.code, got.get("unsupported")) == (420, "baz")


DIGEST = 'Digest username="alice", realm="ims.test", nonce="n1", uri="sip:x@ims.test", response="abc"'
BASIC = "Basic YWxpY2U6c2VjcmV0"


# What Kamailio 5.6 answers, checked on it: both want complete digest
# credentials; 2048 also refuses (without a reply) another scheme, which
# 8192 lets pass.
@pytest.mark.parametrize("checks,auth,expect", [
    (2048, DIGEST, (200, "Sane")),
    (2048, DIGEST.replace(' nonce="n1",', ""), (400, "Bad Auth Credentials")),
    (2048, DIGEST + ", qop=auth", (400, "Bad Auth Credentials")),
    (2048, DIGEST + ', qop=auth, cnonce="c", nc=00000001', (200, "Sane")),
    (2048, DIGEST.replace('"alice"', '""'), (400, "Auth Empty User")),
    (2048, BASIC, None),
    (2048, None, (200, "Sane")),
    (8192, DIGEST.replace(' nonce="n1",', ""), (400, "Bad Auth Credentials")),
    (8192, DIGEST.replace('"n1"', '""'), (400, "Auth Empty Nonce")),
    (8192, DIGEST.replace('"abc"', '""'), (400, "Auth Empty Response")),
    (8192, BASIC, (200, "Sane")),
])
def test_digest_credentials(proxy, peers, checks, auth, expect):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(options(asker, p, 1, checks, [f"Authorization: {auth}"] if auth else []), p.port)
    if expect is None:
        no_answer_to(asker, 1, p)
    else:
        got = answer_to(asker, 1)
        assert (got.code, got.reason) == expect


def test_duplicate_tags_and_defaults(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(options(asker, p, 1, 4096).replace(";tag=caller", ";tag=caller;tag=again", 1), p.port)
    got = answer_to(asker, 1)
    assert (got.code, got.reason) == (400, "Many From Tag Params")
    text = options(asker, p, 2, 4096)
    text = text.replace("\r\nTo: <sip:x@127.0.0.1:%d>" % p.port, "\r\nTo: <sip:x@127.0.0.1:%d>;tag=a;tag=b" % p.port)
    asker.send(text, p.port)
    got = answer_to(asker, 2)
    assert (got.code, got.reason) == (400, "Many To Tag Params")
    asker.send(options(asker, p, 3, 4096), p.port)
    assert answer_to(asker, 3).code == 200
    # sanity_check_defaults(): default_checks (3047) include 2048, which
    # sends nothing for credentials of another scheme than digest
    asker.send(options(asker, p, 4, None, [f"Authorization: {BASIC}"]), p.port)
    no_answer_to(asker, 4, p)
    asker.send(options(asker, p, 5, None, [f"Authorization: {DIGEST}"]), p.port)
    assert answer_to(asker, 5).code == 200
    # default_checks set to what leaves 2048 out
    p2 = proxy("modules.lua", modparams={**SANE, ("sanity", "default_checks"): 1}, name="defaults")
    asker.send(options(asker, p2, 6, None, [f"Authorization: {BASIC}"]), p2.port)
    assert answer_to(asker, 6).code == 200


def test_noreply_then_sanity_reply(proxy, peers):
    p = proxy("modules.lua", modparams={**SANE, ("sanity", "noreply"): 1})
    asker = peers("asker")
    asker.send(with_body(options(asker, p, 1, 128), "abcdEXTRA", 4), p.port)
    no_answer_to(asker, 1, p)
    asker.send(with_body(options(asker, p, 2, 128, ["X-Reply: yes"]), "abcdEXTRA", 4), p.port)
    got = answer_to(asker, 2)
    assert (got.code, got.reason) == (400, "Content-Length mis-match")


@pytest.mark.parametrize("ruri,headers,want", [
    # X-Sv: is_tel_number, is_numeric, is_alphanum, is_alphanumex(+-) of
    # X-Value; uri_param (a parameter without value), uri_param_value,
    # uri_param_any of X-Param; is_uri(X-Uri)
    ("sip:+4930123456@127.0.0.1;tgrp=7;foo",
     ["X-Value: +4930123456", "X-Param: tgrp", "X-Param-Value: 7", "X-Add: bar=1", "X-Rm: foo",
      "X-Uri: sip:bob@example.com;lr"],
     ("1 -2 -3 1 -1 1 1 1", "1 1", "sip:+4930123456@127.0.0.1;tgrp=7;bar=1")),
    ("sip:alice@127.0.0.1", ["X-Value: 12345", "X-Param: foo", "X-Add: lr", "X-Uri: not a uri"],
     ("1 1 1 1 -1 -1 -1 -1", "1", "sip:alice@127.0.0.1;lr")),
    ("sip:alice@127.0.0.1;foo", ["X-Value: abc123", "X-Param: foo", "X-Rm: nope"],
     ("-2 -2 1 1 1 1 1 -1", "1", "sip:alice@127.0.0.1;foo")),
    ("sip:+1@127.0.0.1;foo=bar", ["X-Value: +0123", "X-Param: foo", "X-Param-Value: baz"],
     ("-2 -2 -3 1 -1 -1 1 -1", None, None)),
    ("sip:bob@127.0.0.1;foo=bar", ["X-Param: foo", "X-Param-Value: bar", "X-Value: a_b"],
     ("-2 -2 -3 -3 -1 1 1 -1", None, None)),
])
def test_siputils_checks(proxy, peers, ruri, headers, want):
    p = proxy("siputils.lua")
    asker = peers("asker")
    asker.send(request("OPTIONS", ruri, asker, cseq=1, extra=headers), p.port)
    got = answer_to(asker, 1)
    assert (got.get("x-sv"), got.get("x-edit-ret"), got.get("x-ruri")) == want, got.raw


@pytest.mark.parametrize("a,b,lst,sep,want", [
    ("alice", "alice", "bob, alice ,carol", ",", "1 1 1 1 1"),
    ("Alice", "alice", "bob,alice", ",", "-2 1 -2 -1 -1"),
    ("bob", "alice", "a;bo;c", ";", "-1 -1 -1 -1 1"),
    ("al", "alice", "alice|al", "|", "-2 -2 -1 1 1"),
])
def test_textops_strings(proxy, peers, a, b, lst, sep, want):
    # cmp_str, cmp_istr, starts_with, in_list, in_list_prefix (X-T)
    p = proxy("textops_str.lua")
    asker = peers("asker")
    asker.send(request("OPTIONS", "sip:x@127.0.0.1", asker, cseq=1,
                       extra=[f"X-A: {a}", f"X-B: {b}", f"X-List: {lst}", f"X-Sep: {sep}"]), p.port)
    assert answer_to(asker, 1).get("x-t") == want


def test_relay_to_proto(proxy, peers):
    # t_relay_to_proto("tcp"): a Request-URI that names no transport, the
    # INVITE goes over TCP all the same
    p = proxy("modules.lua", modparams=SANE)
    callee = peers.tcp("callee", answers_invite(486, "Busy Here"))
    caller = peers("caller")
    caller.send(request("INVITE", f"sip:callee@127.0.0.1:{callee.port}", caller, extra=["X-Proto: tcp"]),
                p.port)
    invite = callee.wait_for(is_request("INVITE"), "the INVITE over TCP")
    assert invite.vias[0].startswith("SIP/2.0/TCP "), invite.vias[0]
    assert caller.wait_for(lambda m: not m.is_request and m.code >= 300, "the final reply").code == 599


def test_failure_route_of_a_silent_branch(proxy, peers):
    # a callee that never answers: fr_timer's local 408 runs the failure
    # route, where t_branch_replied() is false and t_any_timeout() true
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee")
    caller = peers("caller")
    caller.send(request("INVITE", f"sip:callee@127.0.0.1:{callee.port}", caller), p.port)
    final = caller.wait_for(lambda m: not m.is_request and m.code >= 300, "the failure route's reply")
    assert final.code == 599 and final.reason.endswith(" replied -1 1 -1 -1"), final.reason


def test_tmx_route_tests_and_precheck(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee", lambda peer, m: (peer.answer(m, 180, "Ringing", to_tag="c1"),
                                              peer.answer(m, 486, "Busy Here", to_tag="c1", delay=1.0))
                   if m.is_request and m.method == "INVITE" and len(peer.received) == 1 else None)
    caller = peers("caller")
    invite = request("INVITE", f"sip:callee@127.0.0.1:{callee.port}", caller, call_id="tmx@test")
    caller.send(invite, p.port)
    caller.wait_for(is_response(180, "INVITE"), "180")
    caller.send(invite, p.port)  # a retransmission while the callee rings
    final = caller.wait_for(lambda m: not m.is_request and m.code >= 300, "the failure route's reply")
    assert final.code == 599
    # and t_get_status_code(), t_check_status("48[0-9]"), t_check_status("^5"),
    # t_get_branch_index() in the failure route (t_send_reply() sent it);
    # t_get_branch_index() in the onreply route after "/"; then
    # t_branch_replied(), t_any_timeout(), t_grep_status(486) and (180: not
    # the branch's last code)
    assert final.reason == ("failure req=-1,fail=1,branch=-1,reply=-1 "
                            "onreply req=-1,fail=-1,branch=-1,reply=1/0 status 486 1 -1 1 "
                            "replied 1 -1 1 -1")
    invites = [m for m in callee.received if m.is_request and m.method == "INVITE"]
    assert len(invites) == 1, "the retransmission was relayed"
    assert invites[0].get("x-routes") == "req=-1,fail=-1,branch=1,reply=-1"
    # t_precheck_trans() is true only while another process handles a
    # copy of the request (never on imsdlgd: a call is handled on one
    # shard); the retransmission got the last reply again from t_relay()
    assert "precheck: a retransmission" not in p.log_text()
    ringing = [m for m in caller.received if not m.is_request and m.code == 180]
    assert len(ringing) >= 2


@pytest.mark.skipif(conftest.PROXY_KIND == "kamailio", reason="imsdlgd's own argument checks")
def test_sanity_bad_arguments(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    for n, (checks, uri_checks) in enumerate([(0, 7), (40000, 7), (1, 0), (1, 16)], 1):
        asker.send(options(asker, p, n, checks, uri_checks=uri_checks), p.port)
        got = answer_to(asker, n)
        assert got.code == 500, (checks, uri_checks, got.code)
    assert "out of" in p.log_text()


def test_xlog_expands_pseudo_variables(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    text = options(asker, p, 7, 1, ["X-Log: hello there"])
    asker.send(text, p.port)
    assert answer_to(asker, 7).code == 200
    call_id = next(line for line in text.split("\r\n") if line.startswith("Call-ID:")).split(" ", 1)[1]
    log = p.log_text()
    assert f"xlog: OPTIONS from 127.0.0.1 cseq 7 x-log hello there avp <null> $ ci {call_id}" in log, log[-2000:]
    assert "xlog warn: x" in log
    assert "xlog dbg" not in log


def test_log_prefix(proxy, peers):
    # log_prefix: expanded for each message a route handles, in front of
    # what is logged meanwhile, not after
    p = proxy("modules.lua", modparams=SANE, core={"log_prefix": "{$rm $cs $ci} "})
    asker = peers("asker")
    text = options(asker, p, 11, 1, ["X-Log: prefixed"])
    call_id = next(line for line in text.split("\r\n") if line.startswith("Call-ID:")).split(" ", 1)[1]
    asker.send(text, p.port)
    assert answer_to(asker, 11).code == 200
    lines = p.log_text().splitlines()
    logged = [line for line in lines if "xlog: OPTIONS from" in line and "x-log prefixed" in line]
    assert len(logged) == 1, lines[-20:]
    assert f"{{OPTIONS 11 {call_id}}} " in logged[0].split("xlog: OPTIONS from")[0], logged
    # once the route is over, lines have no prefix
    p.stop()
    after = p.log_text().splitlines()[len(lines):]
    assert after and not any("{OPTIONS" in line for line in after), after


@pytest.mark.skipif(conftest.PROXY_KIND == "kamailio", reason="Kamailio refuses the format")
def test_xlog_keeps_what_is_no_variable(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    text = options(asker, p, 8, 1, ["X-Log-Format: raw $nothing $ci( $hdr() $ $$ $ci"])
    call_id = next(line for line in text.split("\r\n") if line.startswith("Call-ID:")).split(" ", 1)[1]
    asker.send(text, p.port)
    assert answer_to(asker, 8).code == 200
    assert f"raw $nothing {call_id}( $hdr() $ $ {call_id}" in p.log_text()


@pytest.mark.parametrize("pattern,body,found", [
    ("^Via: SIP/2.0/UDP", "hello world\r\n", "1,-1,1,1,1"),
    ("^HELLO w", "hello world\r\n", "1,1,1,1,1"),
    ("^bye", "hello world\r\n", "-1,-1,1,1,1"),
    ("^Via: SIP/2.0/UDP", None, "1,-1,-1,1,1"),
])
def test_textops_search_and_headers(proxy, peers, pattern, body, found):
    # X-Found: search, search_body, has_body, remove_hf of a header there
    # and of one absent (1 both, as on Kamailio 5.6)
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    text = options(asker, p, 9, 1, [f"X-Search: {pattern}"])
    if body is not None:
        text = with_body(text, body, len(body))
    asker.send(text, p.port)
    got = answer_to(asker, 9)
    assert got.code == 200 and got.get("x-found") == found, (got.code, got.get("x-found"))


@pytest.mark.skipif(conftest.PROXY_KIND == "kamailio", reason="imsdlgd's own argument checks")
def test_textops_bad_regex_is_a_script_error(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    asker.send(options(asker, p, 10, 1, ["X-Search: a(b"]), p.port)
    assert answer_to(asker, 10).code == 500
    assert "KSR.textops.search: bad regex" in p.log_text()


def test_stateless_forward(proxy, peers):
    # KSR.forward() to the Request-URI's host, KSR.forward_uri() elsewhere
    # with the Request-URI kept; the replies come back through the proxy
    # without a transaction
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "Hello") if m.is_request else None)
    other = peers("other", lambda peer, m: peer.answer(m, 202, "Elsewhere") if m.is_request else None)
    asker = peers("asker")
    asker.send(request("OPTIONS", callee.uri, asker, cseq=1, extra=["X-Forward-To: ruri"]), p.port)
    got = answer_to(asker, 1)
    assert (got.code, got.reason) == (200, "Hello")
    relayed = callee.wait_for(is_request("OPTIONS"), "the forwarded OPTIONS")
    assert len(relayed.vias) == 2 and relayed.ruri == callee.uri
    asker.send(request("OPTIONS", callee.uri, asker, cseq=2, extra=[f"X-Forward-To: sip:127.0.0.1:{other.port}"]),
               p.port)
    got = answer_to(asker, 2)
    assert (got.code, got.reason) == (202, "Elsewhere")
    at_other = other.wait_for(is_request("OPTIONS"), "the OPTIONS at the other")
    assert at_other.ruri == callee.uri
    assert len([m for m in callee.received if m.is_request]) == 1
    assert ";rport" not in relayed.vias[0]
    # add_local_rport(): our Via asks the next hop for rport (RFC 3581)
    asker.send(request("OPTIONS", callee.uri, asker, cseq=3, extra=["X-Forward-To: ruri", "X-Local-Rport: 1"]),
               p.port)
    assert answer_to(asker, 3).code == 200
    third = [m for m in callee.received if m.is_request and m.cseq_num == 3][0]
    assert "rport" in [param.split("=")[0] for param in third.vias[0].split(";")[1:]], third.vias[0]


def test_more_pseudo_variables(proxy, peers):
    # values as Kamailio 5.6 gives them (display names keep their quotes)
    p = proxy("modules.lua", modparams=SANE)
    asker = peers("asker")
    extra = ['X-Pv-Test: 1', 'P-Asserted-Identity: "Alice" <sip:+4930111@ims.test>, <tel:+4930111>',
             'P-Preferred-Identity: "Bob B" <sip:bob@pref.test:5061>',
             'Diversion: <sip:div@d.test>;reason=unconditional', 'Remote-Party-ID: "R" <sip:rpid@r.test>;party=calling',
             'X-Many: 1', 'X-Many: 2, 3']
    before = int(time.time())
    text = options(asker, p, 11, 1, extra).replace("From: <", 'From: "Al Ice" <', 1)
    asker.send(text.replace("\r\nTo: <", "\r\nTo: Bare <", 1), p.port)
    got = answer_to(asker, 11)
    assert got.get("x-pvs").split("|") == [
        "sip:+4930111@ims.test", "sip:bob@pref.test:5061", "bob", "pref.test", '"Bob B"', "sip:div@d.test",
        "sip:rpid@r.test", "1", "2", "1", "0", "192.0.2.5", "5070", "tcp", "0", '"Al Ice"', "Bare"], got.get("x-pvs")
    assert before <= int(got.get("x-ts")) <= time.time() + 1


def test_hdr_insert_and_append(proxy, peers):
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    asker = peers("asker")
    asker.send(request("OPTIONS", callee.uri, asker, cseq=1, extra=["X-Forward-To: ruri", "X-Insert: 1"]), p.port)
    assert answer_to(asker, 1).code == 200
    got = callee.wait_for(is_request("OPTIONS"), "the forwarded OPTIONS")
    names = [line.split(":", 1)[0].lower() for line in got.raw.split("\r\n")[1:] if ":" in line]
    # as Kamailio 5.6 writes them: insert() above our Via, append() last
    assert names == ["x-top", "via", "via", "max-forwards", "from", "to", "call-id", "cseq", "contact",
                     "x-forward-to", "x-insert", "content-length", "x-bottom"], names


def test_forward_no_connect(proxy, peers):
    # set_forward_no_connect(): the request goes only over a TCP connection
    # already open; there is none to this callee, so nothing reaches it
    p = proxy("modules.lua", modparams=SANE)
    callee = peers.tcp("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    asker = peers("asker")
    target = f"sip:127.0.0.1:{callee.port};transport=tcp"
    asker.send(request("OPTIONS", callee.uri, asker, cseq=1, extra=[f"X-Forward-To: {target}", "X-No-Connect: 1"]),
               p.port)
    time.sleep(1)
    assert callee.accepted == 0 and not callee.received
    # without it the proxy connects
    asker.send(request("OPTIONS", callee.uri, asker, cseq=2, extra=[f"X-Forward-To: {target}"]), p.port)
    assert answer_to(asker, 2).code == 200
    assert callee.accepted == 1


def wait_closed(peer, closed: bool, timeout: float = 2) -> None:
    """Waits until peer's connections are all closed by the other side (or
    checks for timeout s that they stay open)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and bool(peer.conns) == closed:
        time.sleep(0.05)
    assert (not peer.conns) == closed, peer.conns


@pytest.mark.skipif(conftest.PROXY_KIND == "kamailio",
                    reason="Kamailio 5.6 closes after the 100 Trying already, then cannot send the final reply")
@pytest.mark.parametrize("close", [True, False])
def test_reply_close(proxy, peers, close):
    # set_reply_close(): the caller's connection closes after the final
    # reply (the failure route's 599), not after the 100 Trying before it
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee", answers_invite(486, "Busy Here", delay=0.5))
    caller = peers.tcp("caller", connect_to=p.port)
    caller.send(request("INVITE", callee.uri, caller, extra=["X-Reply-Close: 1"] if close else []))
    caller.wait_for(is_response(100, "INVITE"), "100 Trying")
    assert caller.conns, "closed after a provisional reply"
    assert caller.wait_for(is_final("INVITE"), "the final reply").code == 599
    wait_closed(caller, close)


@pytest.mark.parametrize("close", [True, False])
def test_forward_close(proxy, peers, close):
    # set_forward_close(): the connection t_relay() opened for the INVITE
    # closes once it is written (Kamailio's KSR.forward_uri() ignores the
    # flag; imsdlgd's stateless forward honours it too)
    p = proxy("modules.lua", modparams=SANE)
    callee = peers.tcp("callee")
    caller = peers("caller")
    extra = ["X-Forward-Close: 1"] if close else []
    caller.send(request("INVITE", f"sip:callee@127.0.0.1:{callee.port};transport=tcp", caller, extra=extra),
                p.port)
    callee.wait_for(is_request("INVITE"), "the INVITE")
    wait_closed(callee, close)


@pytest.mark.parametrize("no_connect", [True, False])
def test_reply_no_connect(proxy, peers, no_connect):
    # The caller's TCP connection closes while the callee rings; the final
    # reply then needs a new connection (to the caller's address, where a
    # listener now waits): set_reply_no_connect() forbids it
    p = proxy("modules.lua", modparams=SANE)
    callee = peers("callee", answers_invite(486, "Busy Here", delay=1.0))
    caller = peers.tcp("caller", connect_to=p.port)
    extra = ["X-Reply-No-Connect: 1"] if no_connect else []
    caller.send(request("INVITE", callee.uri, caller, extra=extra))
    callee.wait_for(is_request("INVITE"), "INVITE")
    port = caller.sock.getsockname()[1]
    caller.hang_up()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4)
    listener.settimeout(2.5)
    try:
        conn, _ = listener.accept()
        conn.close()
        connected = True
    except socket.timeout:
        connected = False
    finally:
        listener.close()
    assert connected == (not no_connect)
