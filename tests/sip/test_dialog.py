"""Dialog engine tests: SIPp calls through imsdlgd with ims_dialog loaded,
asserting on what the proxy generates on the wire (BYEs, CANCELs, final
replies; issue 4). imsdlgd only: the KEMI names are Kamailio's, but
Kamailio's ims_dialog cannot do these.

  timeout / dlg_terminate   BYE both ways, tags, CSeq, Max-Forwards, Reason
  forking                   the answering branch gets the BYE, the cancelled
                            early leg none; dlg_terminate while two branches
                            ring: 488 up, CANCEL with Reason down
  lifetime                  restarted by a re-INVITE; timeout_avp;
                            noack_timeout; early_timeout
  target refresh            a re-INVITE (answer) moves where the BYE goes
  spiral                    two passes, one dialog, one did cookie
  profiles                  a per-caller limit of concurrent calls
  limits                    max_dialogs, max_memory: new calls get 503
  keep-alives               OPTIONS to the sides asked for; failures end
                            the call; timeout-noreset

Timings come from the SIPp message logs (each entry is time-stamped) and
are only bounded loosely: machines are noisy."""
from __future__ import annotations

import http.client
import json
import random
import re
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest

import conftest
import sippeer
import sipwire
from sipwire import Msg, distinct, requests, responses, uri_hostport, uri_of, via_sent_by

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="dialog tests run against imsdlgd")


def ruri(port: int) -> str:
    return f"sip:service@127.0.0.1:{port}"


@pytest.fixture
def dlg_proxy(proxy, monkeypatch):
    """proxy() with loadmodule "ims_dialog" and its modparams."""
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2, **kw):
        text = orig(kind, port, children, lua, modparams, debug, **kw)
        return text.replace('loadmodule "app_lua.so"',
                            'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')

    monkeypatch.setattr(conftest, "render_cfg", render)
    return proxy


@pytest.fixture
def dlg_proxy_rpc(dlg_proxy, monkeypatch):
    """dlg_proxy() that also serves JSON-RPC over HTTP: returns (proxy,
    rpc), rpc(method, params) giving the result (errors fail the test)."""
    http_port = conftest.free_port()
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2, **kw):
        text = orig(kind, port, children, lua, modparams, debug, **kw)
        return text.replace(f"children={children}\n",
                            f"children={children}\n"
                            f"rpc_listen=http:{conftest.HOST}:{http_port}\n")

    monkeypatch.setattr(conftest, "render_cfg", render)

    def rpc(method, params=None):
        conn = http.client.HTTPConnection(conftest.HOST, http_port, timeout=5)
        try:
            body = {"jsonrpc": "2.0", "method": method, "id": 1,
                    "params": params or []}
            conn.request("POST", "/RPC", body=json.dumps(body))
            reply = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert "error" not in reply, (method, reply)
        return reply["result"]

    def start(*args, **kwargs):
        return dlg_proxy(*args, **kwargs), rpc

    return start


def one(msgs, what):
    """The single distinct message of a list (retransmissions ignored)."""
    msgs = distinct(msgs)
    assert len(msgs) == 1, f"{what}: expected 1, got {len(msgs)}"
    return msgs[0]


def hdr(msg, name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", msg.raw, re.M | re.I)
    return m.group(1).strip() if m else None


def check_bye(bye, from_tag, to_tag, cseq_above, reason):
    # our Via first (RFC 3261 §7.3.1), not appended after Content-Length
    assert bye.raw.splitlines()[1].lower().startswith("via:"), bye.raw
    assert hdr(bye, "From").endswith(f"tag={from_tag}"), hdr(bye, "From")
    assert hdr(bye, "To").endswith(f"tag={to_tag}"), hdr(bye, "To")
    num, method = hdr(bye, "CSeq").split()
    assert method == "BYE" and int(num) > cseq_above, hdr(bye, "CSeq")
    assert hdr(bye, "Max-Forwards") == "70"
    assert hdr(bye, "Reason") == f'SIP;cause=200;text="{reason}"', hdr(bye, "Reason")


def tags(uac, uas):
    inv = one(requests(uas.received(), "INVITE"), "INVITE at the UAS")
    caller_tag = re.search(r"tag=([^;>\s]+)", hdr(inv, "From")).group(1)
    ok = [m for m in responses(uac.received(), 200, "INVITE")][0]
    callee_tag = re.search(r"tag=([^;>\s]+)", hdr(ok, "To")).group(1)
    return caller_tag, callee_tag


def test_timeout_sends_bye_both_ways(dlg_proxy, sipp):
    # (with Kamailio's user_agent_header: every request of ours carries it)
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 2},
                  core={"user_agent_header": "User-Agent: imsdlg-ua/1"})
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port,
                   keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()
    caller_tag, callee_tag = tags(uac, uas)
    # towards the caller: the callee's tag in From, the caller's in To
    check_bye(one(requests(uac.received(), "BYE"), "BYE at the caller"),
              callee_tag, caller_tag, 0, "dialog_timeout")
    # towards the callee: above the caller's INVITE CSeq
    check_bye(one(requests(uas.received(), "BYE"), "BYE at the callee"),
              caller_tag, callee_tag, 1, "dialog_timeout")
    for bye in requests(uac.received(), "BYE") + requests(uas.received(), "BYE"):
        assert hdr(bye, "User-Agent") == "imsdlg-ua/1", bye.raw
    assert hdr(one(requests(uas.received(), "INVITE"), "INVITE"), "User-Agent") != "imsdlg-ua/1"


def test_script_terminate_all(dlg_proxy, sipp):
    p = dlg_proxy("dialog.lua", subst={"REASON": "operator request"})
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("dlg_uac_info_bye.xml", p, uas.port,
                   keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()
    caller_tag, callee_tag = tags(uac, uas)
    check_bye(one(requests(uac.received(), "BYE"), "BYE at the caller"),
              callee_tag, caller_tag, 0, "operator request")
    # the caller sent CSeq 2 (INFO) in this dialog: the callee's BYE is above
    check_bye(one(requests(uas.received(), "BYE"), "BYE at the callee"),
              caller_tag, callee_tag, 2, "operator request")
    assert not requests(uas.received(), "INFO"), "the INFO was answered by the proxy"


def test_terminated_when_both_byes_answered(dlg_proxy_rpc, sipp):
    """A call ended by the proxy stays confirmed (and counted) until every
    BYE it sent is answered or timed out; then it is state 5. Here the
    callee vanished after its 200: its BYE times out (fr_timer, 3 s)."""
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("tm", "fr_timer"): 3000})
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind((conftest.HOST, 0))
    hole.settimeout(5)
    try:
        uas = sipp.uas("dlg_uas_blackhole.xml",
                       keys={"blackhole": hole.getsockname()[1]})
        uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port,
                       keys={"ruri": ruri(uas.port)}, timeout=20, wait=False)
        deadline = time.monotonic() + 10
        while True:
            dlgs = rpc("dlg.list")
            if dlgs and dlgs[0]["state"] == 4:
                break
            assert time.monotonic() < deadline, dlgs
            time.sleep(0.1)
        d = dlgs[0]
        assert rpc("dlg.end_dlg", [d["h_entry"], d["h_id"]]) == {}
        ended_at = time.monotonic()
        # the caller answers its BYE at once
        assert uac.wait(10) == 0, uac.explain()
        assert uas.wait(10) == 0, uas.explain()
        still = rpc("dlg.list")
        if time.monotonic() - ended_at < 2.5:  # else the machine stalled
            assert [x["state"] for x in still] == [4], still
            assert rpc("stats.fetchn", ["active_dialogs"]) == \
                {"dialog.active_dialogs": 1}
        # the callee's BYE reached the black hole and got no answer
        data, _ = hole.recvfrom(65535)
        while not data.startswith(b"BYE "):
            data, _ = hole.recvfrom(65535)
        assert b'Reason: SIP;cause=200;text="mi_terminated"' in data
        deadline = time.monotonic() + 10
        while rpc("stats.fetchn", ["active_dialogs"]) != \
                {"dialog.active_dialogs": 0}:
            assert time.monotonic() < deadline, rpc("dlg.list")
            time.sleep(0.1)
        # not before the callee's BYE timed out
        assert time.monotonic() - ended_at >= 2.5
        assert [x["state"] for x in rpc("dlg.list")] in ([5], [])
    finally:
        hole.close()


_EVENT = re.compile(r"EVENT (dialog:\w+) callid=(\S+) status=(\d+) ci=(\S+)")


def events(p, callid):
    """(event, $DLG_status) the event_callback logged for callid, in order;
    the dialog is current in the callback: $dlg(callid) is the call's."""
    return [(m.group(1), int(m.group(3))) for m in _EVENT.finditer(p.log_text())
            if m.group(2) == callid]


def wait_events(p, callid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while events(p, callid) != want:
        assert time.monotonic() < deadline, (events(p, callid), p.log_tail())
        time.sleep(0.1)


def test_event_callback(dlg_proxy, sipp):
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "event_callback"): "ksr_dialog_event",
                             ("ims_dialog", "default_timeout"): 2})
    # answered and hung up by the caller: start (state 3), end (state 5)
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("uac_call.xml", p, uas.port, keys={"ruri": ruri(uas.port)})
    assert uac.rc == 0, uac.explain()
    callid = requests(uas.received(), "INVITE")[0].call_id
    wait_events(p, callid, [("dialog:start", 3), ("dialog:end", 5)])
    # rejected: failed, with the 486 as the event's message
    uas = sipp.uas("uas_busy.xml", name="uas_busy")
    uac = sipp.uac("uac_busy.xml", p, uas.port, name="uac_busy",
                   keys={"ruri": ruri(uas.port)})
    assert uac.rc == 0, uac.explain()
    callid = requests(uas.received(), "INVITE")[0].call_id
    wait_events(p, callid, [("dialog:failed", 5)])
    # lifetime over: timeout while confirmed, then end once the BYEs the
    # proxy sent are answered; a timer event has no message: $ci is the
    # faked request's
    uas = sipp.uas("uas_call.xml", name="uas_timeout")
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port, name="uac_timeout",
                   keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()
    callid = requests(uas.received(), "INVITE")[0].call_id
    wait_events(p, callid, [("dialog:start", 3), ("dialog:timeout", 4),
                            ("dialog:end", 5)])
    timeout_line = [m for m in _EVENT.finditer(p.log_text())
                    if m.group(1) == "dialog:timeout"][0]
    assert timeout_line.group(4) == "123", timeout_line.group(0)


def probe(p, headers: list[str]) -> Msg:
    """Sends an out-of-dialog OPTIONS (a fresh Call-ID: any worker may own
    it) with the header lines given, and returns the proxy's final reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((conftest.HOST, 0))
        s.settimeout(5)
        port = s.getsockname()[1]
        branch = f"z9hG4bK{random.getrandbits(64):x}"
        req = (f"OPTIONS sip:probe@{conftest.HOST}:{p.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {conftest.HOST}:{port};branch={branch}\r\n"
               f"From: <sip:probe@{conftest.HOST}>;tag={random.getrandbits(32):x}\r\n"
               f"To: <sip:probe@{conftest.HOST}>\r\n"
               f"Call-ID: probe-{random.getrandbits(64):x}\r\n"
               "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               + "".join(f"{h}\r\n" for h in headers) + "Content-Length: 0\r\n\r\n")
        s.sendto(req.encode(), (conftest.HOST, p.port))
        while True:
            rsp = Msg.parse(s.recv(65535).decode())
            if rsp.code >= 200:
                return rsp


def options_about(p, callid, ftag, ttag, action="report") -> Msg:
    """probe() naming a call, as dialog.lua's report_other_call() expects."""
    return probe(p, [f"X-Callid: {callid}", f"X-Ftag: {ftag}", f"X-Ttag: {ttag}", f"X-Action: {action}"])


def test_dlg_get_another_call(dlg_proxy, sipp):
    """dlg_get() from the route of an unrelated request makes a call's
    dialog current, whichever worker owns it: $dlg(...), $dlg_var,
    dlg_setflag and $dlg_ctx read and write it, and dlg_terminate ends it
    (through KSR.x.modf) with BYEs to both sides, once."""
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port,
                   keys={"ruri": ruri(uas.port)}, timeout=30, wait=False)
    deadline = time.monotonic() + 10
    while not requests(uas.received(), "ACK"):
        assert time.monotonic() < deadline, uas.explain()
        time.sleep(0.1)
    caller_tag, callee_tag = tags(uac, uas)
    callid = requests(uas.received(), "INVITE")[0].call_id

    assert options_about(p, callid, caller_tag, "nope").code == 404
    # several probes: with two workers, their Call-IDs land on both
    seen = ""
    for i in range(8):
        # the callee's orientation names the same dialog
        ft, tt = (caller_tag, callee_tag) if i % 2 == 0 else (callee_tag, caller_tag)
        r = options_about(p, callid, ft, tt)
        seen += "x"
        assert r.code == 200, r
        assert r.get("X-Dlg-state") == "4" and r.get("X-Status") == "4"
        assert r.get("X-Dlg-callid") == callid
        assert r.get("X-Dlg-from_tag") == caller_tag
        assert r.get("X-Dlg-to_tag") == callee_tag
        assert r.get("X-Dlg-to_uri") == ruri(uas.port)
        assert r.get("X-Dlg-from_cseq") == "1"
        assert r.get("X-Dlg-to_bindaddr") == f"udp:{conftest.HOST}:{p.port}"
        assert r.get("X-Dlg-lifetime") == "43200"
        assert r.get("X-Seen") == seen  # the variable lives in the dialog
        assert r.get("X-Flag3") == "1" and r.get("X-Known") == "1"
        assert r.get("X-Ctx-Set") == "1"
        # the direction of the probe's tags relative to the call
        assert r.get("X-Ctx-Dir") == ("1" if i % 2 == 0 else "2")
    r = options_about(p, callid, caller_tag, callee_tag, "terminate")
    assert r.get("X-Terminated") == "1" and r.get("X-Again") == "-1"
    assert uac.wait(15) == 0, uac.explain()
    assert uas.wait(15) == 0, uas.explain()
    check_bye(one(requests(uac.received(), "BYE"), "BYE at the caller"),
              callee_tag, caller_tag, 0, "by dlg_get")
    check_bye(one(requests(uas.received(), "BYE"), "BYE at the callee"),
              caller_tag, callee_tag, 1, "by dlg_get")


def test_dlg_ctx_and_values_set_before_creation(dlg_proxy, sipp):
    """What the script sets on the initial INVITE before dlg_manage() is
    adopted by the dialog: $dlg_var, dlg_setflag, and $dlg_ctx timeout (3 s),
    timeout_route and timeout_bye = 0: on expiry the route runs with the
    dialog current and no BYE is sent."""
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    uas = sipp.uas("uas_call.xml", timeout=8)
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port, timeout=8, wait=False,
                   keys={"ruri": f"sip:ctx@127.0.0.1:{uas.port}"})
    deadline = time.monotonic() + 5
    while not requests(uas.received(), "ACK"):
        assert time.monotonic() < deadline, uas.explain()
        time.sleep(0.1)
    caller_tag, callee_tag = tags(uac, uas)
    callid = requests(uas.received(), "INVITE")[0].call_id
    r = options_about(p, callid, caller_tag, callee_tag)
    assert r.get("X-Dlg-lifetime") == "3"
    assert r.get("X-Pre") == "early" and r.get("X-Flag5") == "1"
    assert r.get("X-Toroute") == "on_dlg_timeout"
    deadline = time.monotonic() + 8
    while "TIMEOUT-ROUTE" not in p.log_text():
        assert time.monotonic() < deadline, p.log_tail()
        time.sleep(0.1)
    assert f"TIMEOUT-ROUTE callid={callid} pre=early" in p.log_text()
    # nobody gets a BYE: both SIPps give up waiting for one
    assert uac.wait(15) != 0 and uas.wait(15) != 0
    assert not requests(uac.received(), "BYE")
    assert not requests(uas.received(), "BYE")
    assert options_about(p, callid, caller_tag, callee_tag).get("X-Dlg-state") in (None, "5")


# --------------------------------------------------------------------------
# helpers of the tests below
# --------------------------------------------------------------------------
_STAMPED = re.compile(
    r"-{20,} (?P<when>\d{4}-\d\d-\d\d [\d:.]+)\n(?P<proto>\w+) message (?P<dir>received|sent)[^\n]*\n\n")


def timed(run) -> list[tuple[float, Msg]]:
    """(wall-clock time, message) of everything in a SIPp message log: the
    separator lines carry the time (µs), comparable between SIPp runs."""
    path = Path(run.msg_log)
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    marks = list(_STAMPED.finditer(text))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        raw = sipwire._NOTES.sub("", text[m.end():end].rstrip("\n"))
        if not raw.strip():
            continue
        when = datetime.strptime(m.group("when"), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append((when, Msg.parse(raw, m.group("dir"), m.group("proto"))))
    return out


def first_time(run, pred, what) -> float:
    for when, msg in timed(run):
        if pred(msg):
            return when
    raise AssertionError(f"{what}: not in the log of sipp {run.name}")


def is_req(method, direction, cseq=None):
    return lambda m: (m.direction == direction and m.is_request and m.method == method
                      and (cseq is None or m.cseq_num == cseq))


def is_rsp(code, method, direction):
    return lambda m: (m.direction == direction and not m.is_request and m.code == code
                      and m.cseq_method == method)


def tag_of(value: str) -> str:
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else ""


def contact_uri(msg) -> str:
    return uri_of(msg.get("contact", ""))


def max_cseq_from(msgs, from_tag: str) -> int:
    """Highest CSeq of the requests in msgs sent by the party with that tag
    (the proxy's BYEs, which use that party's tag, left out)."""
    return max([m.cseq_num for m in msgs if m.is_request and m.method not in ("ACK", "CANCEL", "BYE")
                and tag_of(m.get("from", "")) == from_tag] or [0])


def check_generated_bye(bye, *, ruri, from_tag, to_tag, call_id, cseq_above, reason=None):
    """A BYE the proxy generated (dlg_terminate or a timeout), §6.3."""
    assert bye.ruri == ruri, f"BYE Request-URI {bye.ruri!r}, expected {ruri!r}"
    assert tag_of(bye.get("from")) == from_tag, f"BYE From {bye.get('from')!r}: tag {from_tag} expected"
    assert tag_of(bye.get("to")) == to_tag, f"BYE To {bye.get('to')!r}: tag {to_tag} expected"
    assert bye.call_id == call_id, bye.call_id
    assert bye.cseq_method == "BYE" and bye.cseq_num > cseq_above, \
        f"BYE CSeq {bye.get('cseq')!r}: above {cseq_above} expected"
    assert bye.get("max-forwards") == "70", bye.get("max-forwards")
    if reason is not None:
        assert bye.get("reason") == f'SIP;cause=200;text="{reason}"', bye.get("reason")


def distinct_finals(msgs, method="INVITE"):
    return [m for m in distinct(responses(msgs, None, method)) if m.code >= 200]


# --------------------------------------------------------------------------
# 1. forked call, two early legs, the second branch answers; then
#    dlg_terminate("all") BYEs the caller and the answering branch only
# --------------------------------------------------------------------------
def test_fork_second_branch_answers_terminate(dlg_proxy, sipp):
    uas_a = sipp.uas("dlg_uas_ring_cancel.xml", name="uas_a", keys={"xhdr": "X-Branch: a"})
    uas_b = sipp.uas("uas_call.xml", name="uas_b", extra=["-d", "1000"])
    p = dlg_proxy("dialog_fork.lua", subst={"UAS_B_PORT": uas_b.port, "REASON": "reason text"})
    uac = sipp.uac("dlg_uac_info_bye.xml", p, uas_a.port, keys={"ruri": ruri(uas_a.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas_b.wait(10) == 0, uas_b.explain()
    assert uas_a.wait(10) == 0, uas_a.explain()

    uac_in, a_in, b_in = uac.received(), uas_a.received(), uas_b.received()
    inv_a = one(requests(a_in, "INVITE"), "INVITE at UAS A")
    inv_b = one(requests(b_in, "INVITE"), "INVITE at UAS B")
    caller_tag, call_id = tag_of(inv_b.get("from")), inv_b.call_id
    tag_a = tag_of(one(distinct(responses(uas_a.sent(), 180)), "180 of A").get("to"))
    tag_b = tag_of(one(distinct(responses(uas_b.sent(), 200, "INVITE")), "200 of B").get("to"))
    assert tag_a and tag_b and tag_a != tag_b
    assert inv_a.top_branch != inv_b.top_branch

    # both early legs reached the caller, then B's 200 only
    ringing = {tag_of(m.get("to")) for m in distinct(responses(uac_in, 180, "INVITE"))}
    assert ringing == {tag_a, tag_b}, f"180s at the caller: {ringing}, A={tag_a} B={tag_b}"
    ok = one(distinct(responses(uac_in, 200, "INVITE")), "200 for the INVITE at the caller")
    assert tag_of(ok.get("to")) == tag_b
    b_200 = one(distinct(responses(uas_b.sent(), 200, "INVITE")), "200 of B")

    # A: CANCEL, 487, ACK of the 487 -- and no BYE
    one(requests(a_in, "CANCEL"), "CANCEL at UAS A")
    one(responses(uas_a.sent(), 487, "INVITE"), "487 of A")
    assert not requests(a_in, "BYE"), f"the cancelled branch A got a BYE: {requests(a_in, 'BYE')}"
    assert not responses(uac_in, 487), "A's 487 reached the caller"

    # the BYEs: towards the caller from B's tag, towards B with B's tag
    caller_contact = contact_uri(requests(uac.sent(), "INVITE")[0])
    bye_caller = one(requests(uac_in, "BYE"), "BYE at the caller")
    check_generated_bye(bye_caller, ruri=caller_contact, from_tag=tag_b, to_tag=caller_tag,
                        call_id=call_id, cseq_above=max_cseq_from(uac_in, tag_b), reason="reason text")
    bye_b = one(requests(b_in, "BYE"), "BYE at UAS B")
    # the caller sent INVITE 1 and INFO 2 in this dialog
    check_generated_bye(bye_b, ruri=contact_uri(b_200), from_tag=caller_tag, to_tag=tag_b,
                        call_id=call_id, cseq_above=max(2, max_cseq_from(uac.sent(), caller_tag)),
                        reason="reason text")
    assert not requests(b_in, "INFO"), "the INFO was answered by the proxy"


# --------------------------------------------------------------------------
# 2. early termination while two branches ring: dlg_terminate("all") from
#    the reply route of the second 180
# --------------------------------------------------------------------------
def test_early_terminate_two_ringing_branches(dlg_proxy, sipp):
    uas_a = sipp.uas("dlg_uas_ring_cancel.xml", name="uas_a", keys={"xhdr": "X-Branch: a"})
    # B rings 0.5 s later, with the header that makes the script terminate
    uas_b = sipp.uas("dlg_uas_ring_cancel.xml", name="uas_b", keys={"xhdr": "X-Terminate: yes"},
                     extra=["-d", "500"])
    p = dlg_proxy("dialog_fork.lua", subst={"UAS_B_PORT": uas_b.port, "REASON": "early stop"})
    uac = sipp.uac("dlg_uac_early_fail.xml", p, uas_a.port, keys={"ruri": ruri(uas_a.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas_a.wait(10) == 0, uas_a.explain()
    assert uas_b.wait(10) == 0, uas_b.explain()

    # the caller: 100/180s, then one final reply, 488 "early stop", last
    uac_in = distinct([m for m in uac.received() if not m.is_request])
    finals = [m for m in uac_in if m.code >= 200]
    assert [(m.code, m.reason) for m in finals] == [(488, "early stop")], \
        f"finals at the caller: {[(m.code, m.reason) for m in finals]}"
    assert uac_in[-1].code == 488, f"a reply after the 488 reached the caller: {uac_in}"
    assert all(m.code in (100, 180) for m in uac_in[:-1]), f"replies at the caller: {uac_in}"
    assert not [m for m in uac.received() if m.is_request], "requests reached the caller"

    for uas, name in ((uas_a, "A"), (uas_b, "B")):
        got = uas.received()
        inv = one(requests(got, "INVITE"), f"INVITE at UAS {name}")
        cancel = one(requests(got, "CANCEL"), f"CANCEL at UAS {name}")
        assert cancel.top_branch == inv.top_branch
        assert cancel.get("reason") == 'SIP;cause=488;text="early stop"', \
            f"CANCEL at UAS {name}: Reason {cancel.get('reason')!r}"
        one(responses(uas.sent(), 487, "INVITE"), f"487 of UAS {name}")
        ack = one(requests(got, "ACK"), f"ACK of the 487 at UAS {name}")
        assert ack.top_branch == inv.top_branch
        assert not requests(got, "BYE")


# --------------------------------------------------------------------------
# 3. the lifetime restarts on a re-INVITE (and its ACK)
# --------------------------------------------------------------------------
def test_timeout_rearmed_by_reinvite(dlg_proxy, sipp):
    port = conftest.free_port()
    uas = sipp.uas("dlg_uas_reinvite.xml", port=port,
                   keys={"contact2": f"sip:127.0.0.1:{port};transport=UDP"})
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 3})
    # re-INVITE 2 s after the ACK: without a restart the BYEs would come 1 s later
    uac = sipp.uac("dlg_uac_reinvite.xml", p, uas.port, keys={"ruri": ruri(uas.port)},
                   extra=["-d", "2000"], timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()

    reinvite_at = first_time(uac, is_req("INVITE", "sent", 2), "re-INVITE sent by the caller")
    ack_at = first_time(uac, is_req("ACK", "sent", 1), "ACK sent by the caller")
    bye_caller_at = first_time(uac, is_req("BYE", "received"), "BYE at the caller")
    bye_callee_at = first_time(uas, is_req("BYE", "received"), "BYE at the callee")
    assert reinvite_at - ack_at > 1.5
    for who, at in (("caller", bye_caller_at), ("callee", bye_callee_at)):
        assert 2.8 <= at - reinvite_at < 13, \
            f"BYE at the {who} {at - reinvite_at:.2f}s after the re-INVITE (lifetime 3 s)"

    uas_in, uac_in = uas.received(), uac.received()
    one([m for m in requests(uas_in, "INVITE") if m.cseq_num == 2], "re-INVITE at the callee")
    inv = [m for m in requests(uas_in, "INVITE") if m.cseq_num == 1][0]
    caller_tag, call_id = tag_of(inv.get("from")), inv.call_id
    callee_tag = tag_of(distinct(responses(uac_in, 200, "INVITE"))[0].get("to"))
    check_generated_bye(one(requests(uac_in, "BYE"), "BYE at the caller"),
                        ruri=contact_uri(requests(uac.sent(), "INVITE")[0]), from_tag=callee_tag,
                        to_tag=caller_tag, call_id=call_id, cseq_above=max_cseq_from(uac_in, callee_tag),
                        reason="dialog_timeout")
    # the caller's re-INVITE was CSeq 2
    check_generated_bye(one(requests(uas_in, "BYE"), "BYE at the callee"),
                        ruri=f"sip:127.0.0.1:{port};transport=UDP", from_tag=caller_tag, to_tag=callee_tag,
                        call_id=call_id, cseq_above=2, reason="dialog_timeout")


# --------------------------------------------------------------------------
# 4. timeout_avp: the script gives the call 2 s, default_timeout is 60
# --------------------------------------------------------------------------
def test_timeout_avp(dlg_proxy, sipp):
    p = dlg_proxy("dialog_avp.lua", subst={"TIMEOUT": 2},
                  modparams={("ims_dialog", "default_timeout"): 60,
                             ("ims_dialog", "timeout_avp"): "$avp(dlg_timeout)"})
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, uas.port, keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()
    ack_at = first_time(uac, is_req("ACK", "sent"), "ACK sent by the caller")
    for run, who in ((uac, "caller"), (uas, "callee")):
        at = first_time(run, is_req("BYE", "received"), f"BYE at the {who}")
        assert 1.8 <= at - ack_at < 10, f"BYE at the {who} {at - ack_at:.2f}s after the ACK (AVP 2 s)"
    caller_tag, callee_tag = tags(uac, uas)
    check_bye(one(requests(uac.received(), "BYE"), "BYE at the caller"), callee_tag, caller_tag, 0,
              "dialog_timeout")
    check_bye(one(requests(uas.received(), "BYE"), "BYE at the callee"), caller_tag, callee_tag, 1,
              "dialog_timeout")


# --------------------------------------------------------------------------
# 5. target refresh: a re-INVITE moves the callee's end of the dialog to
#    another UA (a second SIPp at PORT2); the timeout BYE must go there
# --------------------------------------------------------------------------
def test_reinvite_answer_moves_callee_target(dlg_proxy, sipp):
    """The caller re-INVITEs; the callee's 200 names the new target."""
    port2 = conftest.free_port()
    new = sipp.uas("dlg_uas_ack_bye.xml", name="uas_new", port=port2)
    target = f"sip:127.0.0.1:{port2};transport=UDP"
    old = sipp.uas("dlg_uas_reinvite_move.xml", name="uas_old", keys={"contact2": target})
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 3})
    uac = sipp.uac("dlg_uac_reinvite.xml", p, old.port, keys={"ruri": ruri(old.port)},
                   extra=["-d", "500"], timeout=20)
    assert uac.rc == 0, uac.explain()
    assert new.wait(10) == 0, new.explain()
    assert old.wait(10) == 0, old.explain()

    old_in, new_in, uac_in = old.received(), new.received(), uac.received()
    inv = [m for m in requests(old_in, "INVITE") if m.cseq_num == 1][0]
    one([m for m in requests(old_in, "INVITE") if m.cseq_num == 2], "re-INVITE at the old target")
    caller_tag, call_id = tag_of(inv.get("from")), inv.call_id
    callee_tag = tag_of(distinct(responses(uac_in, 200, "INVITE"))[0].get("to"))
    ack2 = one([m for m in requests(new_in, "ACK")], "ACK of the re-INVITE at the new target")
    assert ack2.cseq_num == 2 and ack2.ruri == target, ack2

    assert not requests(old_in, "BYE"), "the BYE went to the callee's old Contact"
    bye = one(requests(new_in, "BYE"), "BYE at the new target")
    check_generated_bye(bye, ruri=target, from_tag=caller_tag, to_tag=callee_tag, call_id=call_id,
                        cseq_above=2, reason="dialog_timeout")
    check_generated_bye(one(requests(uac_in, "BYE"), "BYE at the caller"),
                        ruri=contact_uri(requests(uac.sent(), "INVITE")[0]), from_tag=callee_tag,
                        to_tag=caller_tag, call_id=call_id, cseq_above=max_cseq_from(uac_in, callee_tag),
                        reason="dialog_timeout")


def test_2xx_contact_other_than_180s(dlg_proxy, sipp):
    """The 2xx names another Contact than the 180 of the same leg: the
    remote target is the 2xx's (the proxy skips re-reading a 2xx only when
    its Contact and Record-Route repeat the 180's)."""
    port2 = conftest.free_port()
    new = sipp.uas("dlg_uas_ack_bye.xml", name="uas_new", port=port2, timeout=15)
    target = f"sip:127.0.0.1:{port2};transport=UDP"
    old = sipp.uas("dlg_uas_2xx_moves.xml", name="uas_old", keys={"contact2": target})
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 2})
    uac = sipp.uac("dlg_uac_wait_bye.xml", p, old.port, keys={"ruri": ruri(old.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert new.wait(10) == 0, new.explain()

    old_in, new_in, uac_in = old.received(), new.received(), uac.received()
    inv = one(requests(old_in, "INVITE"), "INVITE at the callee")
    caller_tag, call_id = tag_of(inv.get("from")), inv.call_id
    callee_tag = tag_of(distinct(responses(uac_in, 200, "INVITE"))[0].get("to"))
    assert not requests(old_in, "ACK"), "the ACK went to the 180's Contact"
    assert not requests(old_in, "BYE"), "the BYE went to the 180's Contact"
    one(requests(new_in, "ACK"), "ACK at the 2xx's Contact")
    bye = one(requests(new_in, "BYE"), "BYE at the 2xx's Contact")
    check_generated_bye(bye, ruri=target, from_tag=caller_tag, to_tag=callee_tag, call_id=call_id,
                        cseq_above=1, reason="dialog_timeout")
    assert old.wait(10) == 0, old.explain()


def test_callee_reinvite_moves_callee_target(dlg_proxy, sipp):
    """The callee re-INVITEs with a new Contact (RFC 3261 12.2.2: a target
    refresh request updates the remote target the proxy keeps for it)."""
    port2 = conftest.free_port()
    new = sipp.uas("dlg_uas_ack_bye.xml", name="uas_new", port=port2, timeout=15)
    target = f"sip:127.0.0.1:{port2};transport=UDP"
    old = sipp.uas("dlg_uas_reinvite_callee.xml", name="uas_old", keys={"contact2": target},
                   extra=["-d", "500"])
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 3})
    uac = sipp.uac("dlg_uac_answer_reinvite.xml", p, old.port, keys={"ruri": ruri(old.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    old.wait(10)  # its exit code after the checks of what it received

    old_in, new_in, uac_in = old.received(), new.received(), uac.received()
    inv = one(requests(old_in, "INVITE"), "INVITE at the callee")
    caller_tag, call_id = tag_of(inv.get("from")), inv.call_id
    callee_tag = tag_of(distinct(responses(uac_in, 200, "INVITE"))[0].get("to"))
    reinv = one(requests(uac_in, "INVITE"), "the callee's re-INVITE at the caller")
    assert reinv.cseq_num == 10 and contact_uri(reinv) == target, reinv

    assert not requests(old_in, "BYE"), "the BYE went to the callee's old Contact"
    bye = one(requests(new_in, "BYE"), "BYE at the new target")
    check_generated_bye(bye, ruri=target, from_tag=caller_tag, to_tag=callee_tag, call_id=call_id,
                        cseq_above=1, reason="dialog_timeout")
    # the caller has seen CSeq 10 from the callee (its re-INVITE)
    check_generated_bye(one(requests(uac_in, "BYE"), "BYE at the caller"),
                        ruri=contact_uri(requests(uac.sent(), "INVITE")[0]), from_tag=callee_tag,
                        to_tag=caller_tag, call_id=call_id, cseq_above=10, reason="dialog_timeout")
    assert old.rc == 0, old.explain()
    assert new.wait(10) == 0, new.explain()


# --------------------------------------------------------------------------
# 6. noack_timeout: the 200 is never ACKed; BYEs both ways after 2 s
# --------------------------------------------------------------------------
def test_noack_timeout(dlg_proxy, sipp):
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "noack_timeout"): 2})
    uas = sipp.uas("uas_call.xml")
    uac = sipp.uac("dlg_uac_noack.xml", p, uas.port, keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()

    ok_at = first_time(uac, is_rsp(200, "INVITE", "received"), "200 at the caller")
    for run, who in ((uac, "caller"), (uas, "callee")):
        at = first_time(run, is_req("BYE", "received"), f"BYE at the {who}")
        assert 1.8 <= at - ok_at < 10, f"BYE at the {who} {at - ok_at:.2f}s after the 200 (noack_timeout 2)"
    assert not requests(uas.received(), "ACK")
    caller_tag, callee_tag = tags(uac, uas)
    call_id = requests(uac.sent(), "INVITE")[0].call_id
    check_generated_bye(one(requests(uac.received(), "BYE"), "BYE at the caller"),
                        ruri=contact_uri(requests(uac.sent(), "INVITE")[0]), from_tag=callee_tag,
                        to_tag=caller_tag, call_id=call_id, cseq_above=0)
    check_generated_bye(one(requests(uas.received(), "BYE"), "BYE at the callee"),
                        ruri=f"sip:127.0.0.1:{uas.port};transport=UDP", from_tag=caller_tag,
                        to_tag=callee_tag, call_id=call_id, cseq_above=1)


# --------------------------------------------------------------------------
# 7. early_timeout: the callee rings for ever; CANCEL down, 408 up after 2 s
# --------------------------------------------------------------------------
def test_early_timeout(dlg_proxy, sipp):
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "early_timeout"): 2, ("tm", "fr_inv_timer"): 30000})
    uas = sipp.uas("dlg_uas_ring_cancel.xml", keys={"xhdr": "X-Branch: a"})
    uac = sipp.uac("uac_noanswer.xml", p, uas.port, keys={"ruri": ruri(uas.port)}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()

    sent_at = first_time(uac, is_req("INVITE", "sent"), "INVITE sent by the caller")
    final_at = first_time(uac, lambda m: m.direction == "received" and not m.is_request and m.code >= 200,
                          "final reply at the caller")
    assert 1.8 <= final_at - sent_at < 10, f"final reply {final_at - sent_at:.2f}s after the INVITE (early_timeout 2)"
    finals = distinct_finals(uac.received())
    assert [m.code for m in finals] == [408], f"finals at the caller: {finals}"

    uas_in = uas.received()
    inv = one(requests(uas_in, "INVITE"), "INVITE at the callee")
    cancel = one(requests(uas_in, "CANCEL"), "CANCEL at the callee")
    assert cancel.top_branch == inv.top_branch
    cancel_at = first_time(uas, is_req("CANCEL", "received"), "CANCEL at the callee")
    assert 1.8 <= cancel_at - sent_at < 10, f"CANCEL {cancel_at - sent_at:.2f}s after the INVITE"
    one(requests(uas_in, "ACK"), "ACK of the 487 at the callee")
    assert not responses(uac.received(), 487), "the 487 reached the caller"


# --------------------------------------------------------------------------
# 8. spiral: the INVITE passes the proxy twice, one dialog results
# --------------------------------------------------------------------------
def test_spiral_one_dialog(dlg_proxy, sipp):
    uas = sipp.uas("uas_call.xml")
    p = dlg_proxy("dialog_spiral.lua", subst={"UAS_PORT": uas.port})
    uac = sipp.uac("dlg_uac_info_bye.xml", p, p.port, keys={"ruri": f"sip:spiral@127.0.0.1:{p.port}"},
                   timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(10) == 0, uas.explain()

    inv = one(requests(uas.received(), "INVITE"), "INVITE at the callee")
    assert inv.ruri == ruri(uas.port), inv.ruri
    mine = [rr for rr in inv.all("record-route") if uri_hostport(uri_of(rr)) == (p.host, p.port)]
    assert len(mine) == 2, f"two Record-Routes of the proxy expected (one per pass): {inv.all('record-route')}"
    dids = [re.search(r";did=([^;>]+)", rr) for rr in mine]
    assert all(dids), f"a Record-Route of the proxy lacks the did cookie: {mine}"
    assert dids[0].group(1) == dids[1].group(1), f"two passes, two dids: {mine}"

    info_ok = one(responses(uac.received(), 200, "INFO"), "200 for the INFO")
    assert info_ok.reason == "DLG_count=1 processed=1", \
        f"$DLG_count and $stat(processed_dialogs) while the call is up: {info_ok.reason!r}"
    one(requests(uac.received(), "BYE"), "BYE at the caller")
    one(requests(uas.received(), "BYE"), "BYE at the callee")


# --------------------------------------------------------------------------
# 9. profiles: at most 2 concurrent calls per caller, 200 calls from 5
# --------------------------------------------------------------------------
PROFILE_CALLERS = ["alice", "bob", "carol", "dave", "erin"]
PROFILE_LIMIT = 2


def max_overlap(intervals) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_profile_limits_concurrent_calls(dlg_proxy, sipp, tmp_path):
    inf = tmp_path / "callers.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{u};\n" for u in PROFILE_CALLERS))
    uas = sipp.uas("uas_call.xml", calls=10000, timeout=60)
    p = dlg_proxy("dialog_profile.lua", modparams={("ims_dialog", "profiles_with_value"): "caller"})
    # each caller starts a call every 0.2 s and holds it 1 s: ~5 wanted, 2 allowed
    uac = sipp.uac("dlg_uac_limited.xml", p, uas.port, calls=200, rate=25, timeout=25,
                   keys={"ruri": ruri(uas.port)}, extra=["-inf", str(inf), "-d", "1000"])
    assert uac.rc == 0, uac.explain()

    calls: dict[str, dict] = {}
    for when, m in timed(uac):
        c = calls.setdefault(m.call_id, {"user": None, "final": None, "up": None, "bye": None})
        if m.direction == "sent" and m.is_request and m.method == "INVITE":
            c["user"] = re.match(r"<sip:([^@]+)@", m.get("from")).group(1)
        elif m.direction == "received" and not m.is_request and m.cseq_method == "INVITE" and m.code >= 200:
            if c["final"] is None:
                c["final"], c["up"] = m.code, when
        elif m.direction == "sent" and m.is_request and m.method == "BYE" and c["bye"] is None:
            c["bye"] = when
    assert len(calls) == 200
    finals = {c["final"] for c in calls.values()}
    assert finals <= {200, 486}, f"final replies: {finals}"
    accepted = [c for c in calls.values() if c["final"] == 200]
    rejected = [c for c in calls.values() if c["final"] == 486]
    assert len(accepted) + len(rejected) == 200
    assert accepted and rejected, f"{len(accepted)} accepted, {len(rejected)} rejected"
    assert all(c["bye"] for c in accepted)
    # the callee saw exactly the accepted calls
    uas_invites = {m.call_id for m in requests(uas.received(), "INVITE")}
    assert len(uas_invites) == len(accepted), f"{len(uas_invites)} INVITEs at the callee, {len(accepted)} accepted"

    # [200 at the caller, its BYE sent] lies inside the time the proxy counts
    # the call in the caller's profile: never more than the limit at once
    worst = {}
    for user in PROFILE_CALLERS:
        worst[user] = max_overlap([(c["up"], c["bye"]) for c in accepted if c["user"] == user])
    assert max(worst.values()) == PROFILE_LIMIT, f"concurrent calls per caller: {worst}"

    time.sleep(0.5)  # the last BYEs' transactions
    q = sipp.uac("dlg_uac_options_user.xml", p, uas.port, name="query", calls=len(PROFILE_CALLERS), rate=10,
                 timeout=10, keys={"ruri": ruri(uas.port)}, extra=["-inf", str(inf)])
    assert q.rc == 0, q.explain()
    sizes = [m.reason for m in distinct(responses(q.received(), 200, "OPTIONS"))]
    assert sizes == ["size=0"] * len(PROFILE_CALLERS), f"profile sizes after the run: {sizes}"


# --------------------------------------------------------------------------
# early dialogs driven message by message (sippeer): PRACK and UPDATE while
# ringing, BYE while ringing (ims-dialog-behaviour.md §13.2 items 10, 11)
# --------------------------------------------------------------------------
def caller_in_dialog(method: str, caller, resp: Msg, cseq: int, extra=None) -> str:
    """A request of the caller inside the dialog that resp (1xx/2xx) set up:
    to its Contact, along the reversed Record-Route set."""
    return sippeer.request(method, uri_of(resp.get("contact")), caller, call_id=resp.call_id, cseq=cseq,
                           to=resp.get("to"), routes=list(reversed(resp.all("record-route"))), extra=extra)


def live(rpc, call_id: str) -> list[dict]:
    return [d for d in rpc("dlg.list") if d["call-id"] == call_id and d["state"] < 5]


def live_once(rpc, call_id: str, done, within: float = 5) -> list[dict]:
    """live(rpc, call_id) as soon as done() holds for it, or after within s."""
    deadline = time.monotonic() + within
    while not done(dialogs := live(rpc, call_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return dialogs


def gone(dialogs: list[dict]) -> bool:
    return dialogs == []


def test_prack_and_update_while_early(dlg_proxy_rpc, peers):
    def callee_side(peer, m):
        if m.is_request and sippeer.first_time(peer, m):
            if m.method == "INVITE":
                peer.answer(m, 183, "Session Progress", "callee", extra=["Require: 100rel", "RSeq: 1"])
            elif m.method in ("PRACK", "UPDATE"):
                peer.answer(m, 200, "OK")

    callee = peers("callee", callee_side)
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller = peers("caller")
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="prack@test",
                                extra=["Supported: 100rel"]), p.port)
    early = caller.wait_for(sippeer.is_response(183, "INVITE"), "183")

    caller.send(caller_in_dialog("PRACK", caller, early, 2, ["RAck: 1 1 INVITE"]), p.port)
    caller.wait_for(sippeer.is_response(200, "PRACK"), "200 for the PRACK")
    # UPDATE moves the caller's target (RFC 3311 §5.1)
    moved = f"sip:caller-moved@127.0.0.1:{caller.port}"
    update = caller_in_dialog("UPDATE", caller, early, 3).replace(f"Contact: <{caller.uri}>",
                                                                   f"Contact: <{moved}>")
    caller.send(update, p.port)
    caller.wait_for(sippeer.is_response(200, "UPDATE"), "200 for the UPDATE")

    for method in ("PRACK", "UPDATE"):
        got = callee.wait_for(sippeer.is_request(method), method)
        assert got.ruri == callee.uri and got.all("route") == [], got.raw
    [d] = live(rpc, "prack@test")
    assert d["state"] == 2, d
    assert d["caller"]["cseq"] == 3 and d["caller"]["contact"] == moved, d["caller"]
    assert [(leg["tag"], leg["state"]) for leg in d["legs"]] == [("callee", "early")]

    invite = callee.wait_for(sippeer.is_request("INVITE"), "INVITE")
    callee.answer(invite, 200, "OK", "callee")
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200")
    caller.send(caller_in_dialog("ACK", caller, ok, 1), p.port)
    callee.wait_for(sippeer.is_request("ACK"), "ACK")
    [d] = live_once(rpc, "prack@test", lambda ds: ds[0]["state"] == 4)
    assert d["state"] == 4


def test_bye_while_early_ends_the_dialog(dlg_proxy_rpc, peers):
    callee = peers("callee", sippeer.ringing_callee("callee"))
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller = sippeer.acking_caller(peers)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="early-bye@test"), p.port)
    ringing = caller.wait_for(sippeer.is_response(180, "INVITE"), "180")
    assert live(rpc, "early-bye@test")[0]["state"] == 2

    caller.send(caller_in_dialog("BYE", caller, ringing, 2), p.port)
    caller.wait_for(sippeer.is_response(200, "BYE"), "200 for the BYE")
    final = caller.wait_for(sippeer.is_final("INVITE"), "final response to the INVITE")
    assert final.code == 487, final
    invite = callee.wait_for(sippeer.is_request("INVITE"), "INVITE")
    cancel = callee.wait_for(sippeer.is_request("CANCEL"), "CANCEL of the pending branch")
    assert cancel.top_branch == invite.top_branch
    callee.wait_for(sippeer.is_request("ACK"), "ACK of the 487")
    assert live(rpc, "early-bye@test") == []


def answering_bye(peer, m):
    if sippeer.is_request("BYE")(m) and sippeer.first_time(peer, m):
        peer.answer(m, 200, "OK")


def confirmed_call(p, peers, callee_side, call_id: str, caller_side=answering_bye, extra=None):
    """caller -> proxy -> callee, answered and ACKed; returns (caller, callee, 200).
    The caller answers BYEs (or as caller_side says); extra: INVITE header lines."""
    callee = peers("callee", callee_side)
    caller = peers("caller", caller_side)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id=call_id, extra=extra), p.port)
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200")
    caller.send(caller_in_dialog("ACK", caller, ok, 1), p.port)
    callee.wait_for(sippeer.is_request("ACK"), "ACK")
    return caller, callee, ok


def answering(bye_delay: float = 0):
    """A callee that answers INVITE, UPDATE and BYE with 200 (the BYE after bye_delay s)."""
    def callee_side(peer, m):
        if m.is_request and m.method in ("INVITE", "UPDATE", "BYE") and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK", "callee" if m.method == "INVITE" else None,
                        delay=bye_delay if m.method == "BYE" else 0)
    return callee_side


def info(caller, ok, cseq: int, side: str) -> str:
    return caller_in_dialog("INFO", caller, ok, cseq, [f"X-Side: {side}"])


def test_terminate_one_side(dlg_proxy_rpc, peers):
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "operator"},
                           modparams={("ims_dialog", "dlg_extra_hdrs"): "X-Ended-By: imsdlg\\r\\n"})
    caller, callee, ok = confirmed_call(p, peers, answering(), "one-side@test")
    caller.send(info(caller, ok, 2, "callee"), p.port)
    bye = callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee")
    assert hdr(bye, "From").endswith("tag=caller") and hdr(bye, "To").endswith("tag=callee"), bye.raw
    assert bye.ruri == callee.uri and bye.cseq_num == 3, bye.raw  # the caller's INFO was CSeq 2
    assert hdr(bye, "X-Ended-By") == "imsdlg" and hdr(bye, "Max-Forwards") == "70", bye.raw
    assert hdr(bye, "Reason") == 'SIP;cause=200;text="operator"', bye.raw
    assert "dlg_terminate(callee) one-side@test CSeq 2: 1" in p.log_text()
    assert live_once(rpc, "one-side@test", gone) == [], "the dialog outlived its answered BYE"
    assert not [m for m in caller.received if m.method == "BYE"], "the caller got a BYE: side was callee"


def test_terminate_a_callee_whose_contact_is_a_name(dlg_proxy_rpc, peers, nameserver, proxy_kind):
    # The dialog's BYE is tm's own request: to a Contact that is a name not
    # cached it waits for the lookup like a forwarded one (no ACK first: it
    # would start that lookup).
    if proxy_kind != "imsdlgd":
        pytest.skip("Kamailio reads name servers only from /etc/resolv.conf")
    ns = nameserver(["--host-record=callee-host.test,127.0.0.1"])
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "dns"}, core={"dns_servers": ns.server})

    def callee_side(peer, m):
        if not (m.is_request and sippeer.first_time(peer, m)) or m.method == "ACK":
            return
        text = sippeer.reply(m, 200, "OK", peer, to_tag="callee" if m.method == "INVITE" else None)
        peer.send(text.replace(f"Contact: <{peer.uri}>", f"Contact: <sip:callee@callee-host.test:{peer.port}>"),
                  m.src_port)

    callee = peers("callee", callee_side)
    caller = peers("caller", answering_bye)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="named@test"), p.port)
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200")
    assert ns.queries("A", "callee-host.test") == 0
    caller.send(info(caller, ok, 2, "callee"), p.port)
    bye = callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee's Contact")
    assert bye.ruri == f"sip:callee@callee-host.test:{callee.port}", bye.raw
    assert ns.queries("A", "callee-host.test") == 1
    assert live_once(rpc, "named@test", gone) == [], "the dialog outlived its answered BYE"


def test_terminate_each_side_once(dlg_proxy_rpc, peers):
    # the callee answers its BYE after 1.5 s: meanwhile "all" is asked
    # for, and only the caller is left to get one
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "twice"})
    caller, callee, ok = confirmed_call(p, peers, answering(bye_delay=1.5), "once@test")
    caller.send(info(caller, ok, 2, "callee"), p.port)
    callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee")
    caller.send(info(caller, ok, 3, "all"), p.port)
    bye = caller.wait_for(sippeer.is_request("BYE"), "BYE to the caller")
    assert hdr(bye, "From").endswith("tag=callee") and hdr(bye, "To").endswith("tag=caller"), bye.raw
    assert bye.ruri == caller.uri and bye.cseq_num == 1, bye.raw  # the callee never sent a request
    time.sleep(2)
    assert len(distinct([m for m in callee.received if m.method == "BYE"])) == 1, "the callee's side twice"
    assert live(rpc, "once@test") == []
    caller.send(info(caller, ok, 4, "all"), p.port)  # nothing left to end: -1
    caller.wait_for(lambda m: sippeer.is_response(200, "INFO")(m) and m.cseq_num == 4, "200 for INFO 4")
    results = re.findall(r"dlg_terminate\((\w+)\) once@test CSeq (\d+): (-?\d+)", p.log_text())
    assert results == [("callee", "2", "1"), ("all", "3", "1"), ("all", "4", "-1")], results


def test_two_answers_two_confirmed_legs(dlg_proxy_rpc, peers):
    # A answers; B's 200 crosses the proxy's CANCEL. The dialog keeps both
    # as confirmed legs (issue 4, item 3); the BYE that ends A's leg leaves
    # the call up on B's; dlg_terminate("all") then BYEs B and the caller
    # for B's leg only.
    def callee_a(peer, m):
        if m.is_request and m.method in ("INVITE", "BYE") and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK", "a" if m.method == "INVITE" else None)

    def caller_side(peer, m):
        if sippeer.is_request("BYE")(m) and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK")

    a, b = peers("a", callee_a), peers("b", sippeer.ringing_callee("b", answers_as_cancel_comes=True))
    p, rpc = dlg_proxy_rpc("dialog_fork.lua", subst={"UAS_B_PORT": b.port, "REASON": "two legs"})
    caller = peers("caller", caller_side)
    caller.send(sippeer.request("INVITE", a.uri, caller, call_id="two-legs@test"), p.port)
    oks = {}
    for tag in ("a", "b"):
        oks[tag] = caller.wait_for(lambda m, t=tag: sippeer.is_response(200, "INVITE")(m)
                                   and m.get("to").endswith(f"tag={t}"), f"{tag}'s 200")
        caller.send(caller_in_dialog("ACK", caller, oks[tag], 1), p.port)
    a.wait_for(sippeer.is_request("ACK"), "ACK at A")
    b.wait_for(sippeer.is_request("ACK"), "ACK at B")

    def legs():
        [d] = live(rpc, "two-legs@test")
        return d["state"], sorted((leg["tag"], leg["state"]) for leg in d["legs"])

    assert legs() == (4, [("a", "confirmed"), ("b", "confirmed")])
    caller.send(caller_in_dialog("BYE", caller, oks["a"], 2), p.port)
    caller.wait_for(lambda m: sippeer.is_response(200, "BYE")(m) and m.get("to").endswith("tag=a"), "200 BYE")
    time.sleep(0.3)
    assert legs() == (4, [("a", "ended"), ("b", "confirmed")])

    caller.send(caller_in_dialog("INFO", caller, oks["b"], 3), p.port)
    bye_b = b.wait_for(sippeer.is_request("BYE"), "BYE to B")
    bye_caller = caller.wait_for(sippeer.is_request("BYE"), "BYE to the caller")
    assert hdr(bye_b, "To").endswith("tag=b") and bye_b.cseq_num == 4, bye_b.raw  # after INFO 3
    assert hdr(bye_caller, "From").endswith("tag=b") and bye_caller.cseq_num == 1, bye_caller.raw
    assert hdr(bye_b, "Reason") == 'SIP;cause=200;text="two legs"'
    assert live_once(rpc, "two-legs@test", gone) == []
    assert len([m for m in a.received if m.method == "BYE"]) == 1, "A's leg had ended: no BYE of ours"


@pytest.mark.parametrize("mode, tries", [
    # (Route with the did cookie?, the callee's real To tag?) -> dlg_terminate()
    (0, [(False, True, -1), (True, False, -1), (True, True, 1)]),
    (1, [(True, False, -1), (False, True, 1)]),
    (2, [(False, False, -1), (False, True, 1)]),
])
def test_match_modes(dlg_proxy, peers, mode, tries):
    # dlg_match_mode 0: the cookie, then a tight check of Call-ID and both
    # tags; 1: the cookie, else Call-ID and tags; 2: Call-ID and tags only.
    # A wrong tag never matches; the last try of each mode ends the call.
    p = dlg_proxy("dialog.lua", subst={"REASON": "mode"}, modparams={("ims_dialog", "dlg_match_mode"): mode})
    caller, callee, ok = confirmed_call(p, peers, answering(), f"mode{mode}@test")
    assert (";did=" in ok.get("record-route")) == (mode != 2), ok.raw  # mode 2 adds no cookie
    for cseq, (with_did, right_tag, want) in enumerate(tries, 2):
        routes = [rr if with_did else re.sub(r";did=[^;>]*", "", rr) for rr in reversed(ok.all("record-route"))]
        to = ok.get("to") if right_tag else ok.get("to").replace("tag=callee", "tag=other")
        caller.send(sippeer.request("INFO", uri_of(ok.get("contact")), caller, call_id=ok.call_id, cseq=cseq,
                                    to=to, routes=routes), p.port)
        caller.wait_for(lambda m, n=cseq: sippeer.is_response(200, "INFO")(m) and m.cseq_num == n, f"INFO {cseq}")
        assert f"dlg_terminate(all) mode{mode}@test CSeq {cseq}: {want}" in p.log_text(), (cseq, with_did, right_tag)
    callee.wait_for(sippeer.is_request("BYE"), "BYE after the matching INFO")


@pytest.mark.parametrize("modparams, reason, phrase", [
    ({("ims_dialog", "early_terminate_code"): 480}, "no more", "no more"),
    # Kamailio's names; no reason given: the configured phrase
    ({("dialog", "bye_early_code"): 480, ("dialog", "bye_early_reason"): "Temporarily Unavailable"}, "",
     "Temporarily Unavailable"),
], ids=["early_terminate_code", "bye_early_code"])
def test_early_terminate_code(dlg_proxy, peers, modparams, reason, phrase):
    # the code 480 and an early INFO (to the 180's Contact along its route
    # set) that makes the script call dlg_terminate("all", reason)
    callee = peers("callee", sippeer.ringing_callee("callee"))
    p = dlg_proxy("dialog.lua", subst={"REASON": reason}, modparams=modparams)
    caller = sippeer.acking_caller(peers)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="early-code@test"), p.port)
    ringing = caller.wait_for(sippeer.is_response(180, "INVITE"), "180")
    caller.send(caller_in_dialog("INFO", caller, ringing, 2), p.port)
    final = caller.wait_for(sippeer.is_final("INVITE"), "final response")
    assert (final.code, final.reason) == (480, phrase), final
    cancel = callee.wait_for(sippeer.is_request("CANCEL"), "CANCEL")
    assert hdr(cancel, "Reason") == f'SIP;cause=480;text="{phrase}"', cancel.raw
    callee.wait_for(sippeer.is_request("ACK"), "ACK of the 487")
    time.sleep(0.5)
    assert [m.code for m in sippeer.finals(caller)] == [480], "the callee's 487 reached the caller"


def test_terminate_over_tcp_reuses_connections(dlg_proxy, peers):
    # a caller over TCP with no listener (as a UE behind NAT): the proxy's
    # own BYE reaches it only over the connection the caller opened
    def caller_side(peer, m):
        if sippeer.is_response(200, "INVITE")(m):
            peer.send(caller_in_dialog("ACK", peer, m, 1), m.conn)
        elif sippeer.is_request("BYE")(m) and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK")

    def callee_side(peer, m):
        if m.is_request and m.method in ("INVITE", "BYE") and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK", "callee" if m.method == "INVITE" else None)

    callee = peers.tcp("callee", callee_side)
    p = dlg_proxy("dialog.lua", subst={"REASON": "tcp"})
    caller = peers.tcp("caller", caller_side, connect_to=p.port)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="tcp-bye@test"))
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200")
    callee.wait_for(sippeer.is_request("ACK"), "ACK")
    caller.send(caller_in_dialog("INFO", caller, ok, 2))
    bye = caller.wait_for(sippeer.is_request("BYE"), "the proxy's BYE, over the caller's connection")
    callee_bye = callee.wait_for(sippeer.is_request("BYE"), "the proxy's BYE at the callee")
    assert hdr(bye, "Reason") == hdr(callee_bye, "Reason") == 'SIP;cause=200;text="tcp"'
    assert bye.vias[0].startswith("SIP/2.0/TCP") and callee.accepted == 1, (bye.vias, callee.accepted)


def test_terminate_along_route_sets(dlg_proxy, peers):
    # Proxies on both sides record-routed too: "up" (between the caller and
    # us, in the INVITE's Record-Route) and "down" (between us and the
    # callee, above ours in the 200's). Our BYEs must take those paths:
    # to the caller via up, to the callee via down (RFC 3261 §12.1).
    up, down = peers("up"), peers("down")
    up_rr, down_rr = f"<sip:127.0.0.1:{up.port};lr>", f"<sip:127.0.0.1:{down.port};lr>"

    def callee_side(peer, m):
        if sippeer.is_request("INVITE")(m) and sippeer.first_time(peer, m):
            rrs = [down_rr] + m.all("record-route")
            text = sippeer.reply(m, 200, "OK", peer, "callee").replace(
                "".join(f"Record-Route: {rr}\r\n" for rr in m.all("record-route")),
                "".join(f"Record-Route: {rr}\r\n" for rr in rrs))
            peer.send(text, via_sent_by(m.vias[0])[1])

    callee = peers("callee", callee_side)
    p = dlg_proxy("dialog.lua", subst={"REASON": "routes"})
    caller = peers("caller")
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="routes@test",
                                extra=[f"Record-Route: {up_rr}"]), p.port)
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200")
    ours = [rr for rr in ok.all("record-route") if f":{p.port};" in rr]
    assert ok.all("record-route") == [down_rr] + ours + [up_rr], ok.raw
    # the caller's ACK and INFO go through up in reality; here straight to us
    # with the Route set from us on
    caller.send(sippeer.request("ACK", callee.uri, caller, call_id=ok.call_id, to=ok.get("to"),
                                routes=ours + [down_rr]), p.port)
    down.wait_for(sippeer.is_request("ACK"), "the ACK via down")
    caller.send(sippeer.request("INFO", callee.uri, caller, call_id=ok.call_id, cseq=2, to=ok.get("to"),
                                routes=ours + [down_rr]), p.port)

    to_caller = up.wait_for(sippeer.is_request("BYE"), "BYE to the caller, via up")
    assert to_caller.ruri == caller.uri and to_caller.all("route") == [up_rr], to_caller.raw
    to_callee = down.wait_for(lambda m: sippeer.is_request("BYE")(m), "BYE to the callee, via down")
    assert to_callee.ruri == callee.uri and to_callee.all("route") == [down_rr], to_callee.raw


def test_failed_reinvite_keeps_the_call(dlg_proxy_rpc, peers):
    # A re-INVITE refused with 488 changes nothing (RFC 3261 §14.1): the
    # dialog stays confirmed with its target, and the call ends normally.
    def callee_side(peer, m):
        if not (m.is_request and sippeer.first_time(peer, m)):
            return
        if m.method == "INVITE":
            if "tag=" in (m.get("to") or "").split(">", 1)[-1]:
                peer.answer(m, 488, "Not Acceptable Here")
            else:
                peer.answer(m, 200, "OK", "callee")
        elif m.method == "BYE":
            peer.answer(m, 200, "OK")

    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, callee_side, "reinvite-488@test")
    reinvite = caller_in_dialog("INVITE", caller, ok, 2)
    caller.send(reinvite, p.port)
    refused = caller.wait_for(lambda m: sippeer.is_final("INVITE")(m) and m.cseq_num == 2, "the re-INVITE's answer")
    assert refused.code == 488, refused
    caller.send(sippeer.ack_for(reinvite, refused), p.port)
    callee.wait_for(lambda m: sippeer.is_request("ACK")(m) and m.cseq_num == 2, "the proxy's ACK of the 488")
    time.sleep(0.3)
    [d] = live(rpc, "reinvite-488@test")
    assert d["state"] == 4 and [(leg["tag"], leg["state"]) for leg in d["legs"]] == [("callee", "confirmed")], d
    assert d["caller"]["cseq"] == 2 and d["callee"]["contact"] == callee.uri, d

    caller.send(caller_in_dialog("BYE", caller, ok, 3), p.port)
    caller.wait_for(sippeer.is_response(200, "BYE"), "200 for the BYE")
    assert live_once(rpc, "reinvite-488@test", gone) == []


def test_cancel_crossing_the_200(dlg_proxy_rpc, peers):
    # The callee's 200 crosses the caller's CANCEL: the call is up
    # (RFC 3261 §9.2), the dialog confirmed by the ACK, ended by the BYE.
    callee = peers("callee", sippeer.ringing_callee("callee", answers_as_cancel_comes=True))
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller = peers("caller")
    invite = sippeer.request("INVITE", callee.uri, caller, call_id="crossed@test")
    caller.send(invite, p.port)
    caller.wait_for(sippeer.is_response(180, "INVITE"), "180")
    caller.send(sippeer.cancel_for(invite), p.port)
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "the 200 that crossed the CANCEL")
    caller.send(caller_in_dialog("ACK", caller, ok, 1), p.port)
    callee.wait_for(sippeer.is_request("ACK"), "ACK")
    time.sleep(0.3)
    assert not [m for m in caller.received if m.code == 487], "a 487 reached the caller after its 200"
    [d] = live(rpc, "crossed@test")
    assert d["state"] == 4, d
    caller.send(caller_in_dialog("BYE", caller, ok, 2), p.port)
    caller.wait_for(sippeer.is_response(200, "BYE"), "200 for the BYE")
    assert live_once(rpc, "crossed@test", gone) == []


def test_end_dlg_when_the_caller_is_gone(dlg_proxy_rpc, peers):
    # The caller (TCP, no listener) has closed its connection: the BYE
    # towards it cannot be delivered (connection refused). dlg.end_dlg
    # still BYEs the callee, and the dialog ends once both BYEs are
    # answered or failed, well within fr_timer.
    def callee_side(peer, m):
        if m.is_request and m.method in ("INVITE", "BYE") and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK", "callee" if m.method == "INVITE" else None)

    def caller_side(peer, m):
        if sippeer.is_response(200, "INVITE")(m):
            peer.send(caller_in_dialog("ACK", peer, m, 1), m.conn)

    callee = peers("callee", callee_side)
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"}, modparams={("tm", "fr_timer"): 10000})
    caller = peers.tcp("caller", caller_side, connect_to=p.port)
    caller.send(sippeer.request("INVITE", callee.uri, caller, call_id="gone@test"))
    callee.wait_for(sippeer.is_request("ACK"), "ACK")
    caller.hang_up()
    time.sleep(0.3)
    [d] = live(rpc, "gone@test")
    t0 = time.monotonic()
    assert rpc("dlg.end_dlg", [d["h_entry"], d["h_id"]]) == {}
    callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee")
    assert live_once(rpc, "gone@test", gone, within=15) == [] and time.monotonic() - t0 < 5, time.monotonic() - t0


def ring(caller, callee_uri: str, port: int, call_id: str, extra=None) -> tuple[str, Msg]:
    """An INVITE from caller through the proxy; returns it and its first
    reply past 100 (180 from a ringing callee, or the proxy's refusal)."""
    invite = sippeer.request("INVITE", callee_uri, caller, call_id=call_id, extra=extra)
    caller.send(invite, port)
    got = caller.wait_for(lambda m: m.call_id == call_id and not m.is_request and m.code > 100,
                          f"a reply past 100 for {call_id}")
    return invite, got


def test_max_dialogs_refuses_new_calls(dlg_proxy_rpc, peers):
    # two ringing calls fill max_dialogs 2: the third gets 503 from the
    # proxy and never reaches the callee; the two keep going; once one
    # ends, new calls pass again
    callee = peers("callee", sippeer.ringing_callee("callee"))
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "max_dialogs"): 2})
    caller = sippeer.acking_caller(peers)
    invites = {}
    for n in (1, 2):
        invites[n], ringing = ring(caller, callee.uri, p.port, f"limit{n}@test")
        assert ringing.code == 180, ringing
    _, refused = ring(caller, callee.uri, p.port, "limit3@test")
    assert (refused.code, refused.reason) == (503, "Dialog Limit Reached"), refused
    # with the transaction made first, dlg_manage() refuses it itself
    _, refused = ring(caller, callee.uri, p.port, "limit3b@test", extra=["X-Newtran-First: 1"])
    assert (refused.code, refused.reason) == (503, "Dialog Limit Reached"), refused
    assert not [m for m in callee.received if m.call_id == "limit3b@test"], "the refused call was relayed"
    assert rpc("stats.fetchn", ["refused_dialogs"]) == {"dialog.refused_dialogs": 2}
    assert not [m for m in callee.received if m.call_id == "limit3@test"], "the refused call was relayed"
    assert [d["call-id"] for d in rpc("dlg.list") if d["call-id"] == "limit3@test"] == []
    assert "Dialog Limit Reached (max_dialogs 2" in p.log_text()

    caller.send(sippeer.cancel_for(invites[1]), p.port)  # the calls held go on
    assert caller.wait_for(lambda m: sippeer.is_final("INVITE")(m) and m.call_id == "limit1@test",
                           "final for call 1").code == 487
    assert live_once(rpc, "limit1@test", gone) == []
    _, ringing = ring(caller, callee.uri, p.port, "limit4@test")
    assert ringing.code == 180, ringing
    assert "below its limits again" in p.log_text()
    assert rpc("stats.fetchn", ["refused_dialogs"]) == {"dialog.refused_dialogs": 2}


def test_max_memory_refuses_new_calls_and_keeps_the_others(dlg_proxy_rpc, peers):
    # max_memory 1 (MB) with ringing calls held: each holds its INVITE's
    # transactions and dialog, so the limit is reached after some hundreds;
    # the refusal comes when what the workers hold nears it, and a call
    # held before it can still be answered
    def callee_side(peer, m):
        if m.is_request and sippeer.first_time(peer, m):
            peer.answer(m, 180 if m.method == "INVITE" else 200, "Ringing" if m.method == "INVITE" else "OK",
                        "callee" if m.method == "INVITE" else None)

    callee = peers("callee", callee_side)
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "max_memory"): 1})
    caller = sippeer.acking_caller(peers)
    held = 0
    while True:
        _, got = ring(caller, callee.uri, p.port, f"mem{held}@test")
        if got.code != 180:
            break
        held += 1
        assert held < 3000, "no refusal after 3000 calls held"
    assert (got.code, got.reason) == (503, "Memory Limit Reached"), got
    info = rpc("mem.info")
    total = info["transaction_bytes"] + info["dialog_bytes"] + info["profile_bytes"]
    workers = len(info["shards"])
    # the worker that refused reached its share (1 MB / workers); what it
    # held was counted as mem.info walks it
    assert total >= (1 << 20) // workers * 0.9, (held, info)
    assert held >= 20, f"refused after {held} calls: the limit counts too much"
    assert "Memory Limit Reached (max_dialogs 0, max_memory 1 MB)" in p.log_text()

    invite = next(m for m in callee.received if sippeer.is_request("INVITE")(m) and m.call_id == "mem0@test")
    callee.answer(invite, 200, "OK", "callee")
    ok = caller.wait_for(sippeer.is_response(200, "INVITE"), "200 of a call held before the limit")
    caller.send(caller_in_dialog("ACK", caller, ok, 1), p.port)
    callee.wait_for(lambda m: sippeer.is_request("ACK")(m) and m.call_id == "mem0@test", "its ACK")
    assert live_once(rpc, "mem0@test", lambda ds: ds and ds[0]["state"] == 4)[0]["state"] == 4


def answering_options(code: int, also=answering_bye):
    """A handler that answers in-dialog OPTIONS with code (None: silent), and
    everything else as `also` does."""
    def side(peer, m):
        if sippeer.is_request("OPTIONS")(m):
            if code and sippeer.first_time(peer, m):
                peer.answer(m, code, "OK" if code == 200 else "Call Does Not Exist")
        else:
            also(peer, m)
    return side


def options(peer) -> list[Msg]:
    return distinct([m for m in peer.received if sippeer.is_request("OPTIONS")(m)])


def test_keepalives_to_both_sides(dlg_proxy_rpc, peers):
    # dlg_set_property("ka-src"/"ka-dst") before the dialog exists, ka_interval
    # 1: in-dialog OPTIONS to both sides, as each side's peer would send them,
    # CSeq one below what that side last saw; answered, they change nothing.
    # An in-dialog request resetting both stops them.
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "ka_interval"): 1, ("ims_dialog", "ka_timer"): 1})
    caller, callee, ok = confirmed_call(p, peers, answering_options(200, answering()), "ka@test",
                                        caller_side=answering_options(200),
                                        extra=["X-Dlg-Props: ka-src,ka-dst,bogus"])
    to_callee = callee.wait_for(sippeer.is_request("OPTIONS"), "keep-alive to the callee", timeout=5)
    to_caller = caller.wait_for(sippeer.is_request("OPTIONS"), "keep-alive to the caller", timeout=5)
    assert to_callee.ruri == callee.uri and to_callee.cseq_num == 0, to_callee.raw  # the INVITE was CSeq 1
    assert hdr(to_callee, "From").endswith("tag=caller") and hdr(to_callee, "To").endswith("tag=callee")
    assert to_callee.all("route") == [] and hdr(to_callee, "Max-Forwards") == "70", to_callee.raw
    assert to_caller.ruri == caller.uri and to_caller.cseq_num == 0, to_caller.raw
    assert hdr(to_caller, "From").endswith("tag=callee") and hdr(to_caller, "To").endswith("tag=caller")
    log = p.log_text()
    assert "property ka-src: 1" in log and "property ka-dst: 1" in log, log
    assert "property bogus: -1" in log and 'unknown property "bogus"' in log, log

    time.sleep(2.2)
    assert len(options(callee)) >= 2 and len(options(caller)) >= 2, (options(callee), options(caller))
    [d] = live(rpc, "ka@test")
    assert d["state"] == 4 and d["iflags"] == 6, d  # DLG_IFLAG_KA_SRC | DLG_IFLAG_KA_DST
    assert not [m for m in callee.received + caller.received if m.method == "BYE"]

    update = caller_in_dialog("UPDATE", caller, ok, 2, ["X-Dlg-Props: -ka-src,-ka-dst"])
    callee_got = len(options(callee))
    caller.send(update, p.port)
    caller.wait_for(sippeer.is_response(200, "UPDATE"), "200 for the UPDATE")
    time.sleep(2.5)
    assert len(options(callee)) <= callee_got + 1, "keep-alives went on after dlg_reset_property"
    assert live(rpc, "ka@test")[0]["iflags"] == 0


@pytest.mark.parametrize("answer, limit", [(481, 2), (None, 1)], ids=["481", "silent"])
def test_keepalive_failures_end_the_call(dlg_proxy_rpc, peers, answer, limit):
    # the callee answers its keep-alives 481 (it lost the call) or not at
    # all (tm's 408 after fr_timer 1 s); ka_failed_limit failures in a row
    # end the call: BYE to both sides with the reason
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "ka_interval"): 1, ("ims_dialog", "ka_failed_limit"): limit,
                                      ("tm", "fr_timer"): 1000})
    caller, callee, ok = confirmed_call(p, peers, answering_options(answer, answering()), f"ka-{answer}@test",
                                        extra=["X-Dlg-Props: ka-dst"])
    bye = caller.wait_for(sippeer.is_request("BYE"), "BYE to the caller", timeout=8)
    assert hdr(bye, "Reason") == 'SIP;cause=200;text="keepalive_failed"', bye.raw
    callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee")
    assert len(options(callee)) >= limit and not options(caller), "keep-alives went to the callee only"
    last = 481 if answer else 408
    assert f"dialog ka-{answer}@test: {limit} keep-alive(s) to the callee failed (last {last})" in p.log_text()
    assert live_once(rpc, f"ka-{answer}@test", gone) == []


@pytest.mark.parametrize("how", ["property", "modparam"])
def test_timeout_noreset(dlg_proxy, peers, how):
    # default_timeout 3 s and dlg_set_property("timeout-noreset"), or
    # modparam timeout_noreset for every dialog: an in-dialog UPDATE at
    # 1.5 s does not restart the lifetime, so the dialog_timeout BYE comes
    # 3 s after the ACK, not 4.5 s
    modparams = {("ims_dialog", "default_timeout"): 3}
    if how == "modparam":
        modparams[("dialog", "timeout_noreset")] = 1
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"}, modparams=modparams)
    caller, callee, ok = confirmed_call(p, peers, answering(), "noreset@test",
                                        extra=["X-Dlg-Props: timeout-noreset"] if how == "property" else None)
    acked = time.monotonic()
    time.sleep(1.5)
    caller.send(caller_in_dialog("UPDATE", caller, ok, 2), p.port)
    caller.wait_for(sippeer.is_response(200, "UPDATE"), "200 for the UPDATE")
    bye = caller.wait_for(sippeer.is_request("BYE"), "BYE on timeout", timeout=8)
    assert hdr(bye, "Reason") == 'SIP;cause=200;text="dialog_timeout"', bye.raw
    assert time.monotonic() - acked < 4.3, "the UPDATE restarted the lifetime"


def answering_everything(tag: str = "callee"):
    """A side that answers every request but ACK with 200 (an INVITE with To tag `tag`)."""
    def side(peer, m):
        if m.is_request and m.method != "ACK" and sippeer.first_time(peer, m):
            peer.answer(m, 200, "OK", tag if m.method == "INVITE" else None)
    return side


def act(caller, ok, p, cseq: int, what: str) -> str:
    """An in-dialog OPTIONS with X-Do: what; the script's X-Rc."""
    caller.send(caller_in_dialog("OPTIONS", caller, ok, cseq, [f"X-Do: {what}"]), p.port)
    done = caller.wait_for(lambda m: sippeer.is_response(200, "OPTIONS")(m) and m.cseq_num == cseq,
                           f"200 for OPTIONS {cseq}")
    return done.get("x-rc")


def test_requests_of_the_script(dlg_proxy_rpc, peers):
    # dlg_req_within() to each side and to both, with and without headers
    # and body, as that side's peer would send it with a CSeq above what
    # the side saw; methods tm cannot finish alone refused; dlg_bye() then
    # BYEs above those CSeqs
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering_everything(), "reqs@test",
                                        caller_side=answering_everything())
    assert act(caller, ok, p, 2, "req callee INFO hello") == "1"
    info = callee.wait_for(sippeer.is_request("INFO"), "INFO at the callee")
    assert info.ruri == callee.uri and info.cseq_num > 1, info.raw
    assert hdr(info, "From").endswith("tag=caller") and hdr(info, "To").endswith("tag=callee"), info.raw
    assert hdr(info, "X-Sent-By") == "script" and hdr(info, "Content-Type") == "text/plain", info.raw
    assert hdr(info, "Content-Length") == "5" and info.raw.endswith("\r\n\r\nhello"), info.raw

    assert act(caller, ok, p, 3, "req caller NOTIFY") == "1"
    notify = caller.wait_for(sippeer.is_request("NOTIFY"), "NOTIFY at the caller")
    assert notify.ruri == caller.uri and notify.cseq_num == 1, notify.raw  # the callee had sent nothing
    assert hdr(notify, "From").endswith("tag=callee") and hdr(notify, "To").endswith("tag=caller")
    assert hdr(notify, "Content-Length") == "0" and hdr(notify, "Content-Type") is None, notify.raw

    assert act(caller, ok, p, 4, "req all MESSAGE") == "1"
    to_callee = callee.wait_for(sippeer.is_request("MESSAGE"), "MESSAGE at the callee")
    to_caller = caller.wait_for(sippeer.is_request("MESSAGE"), "MESSAGE at the caller")
    # above the caller's OPTIONS 4, which the proxy saw; above our NOTIFY 1
    assert to_callee.cseq_num == 5 and to_caller.cseq_num == 2, (to_callee.raw, to_caller.raw)

    for refused in ("req callee INVITE", "req callee BYE", "req nobody INFO", "req callee IN(FO"):
        assert act(caller, ok, p, 5, refused) == "-1", refused
    assert "dlg_req_within(callee, INVITE)" in p.log_text()

    assert act(caller, ok, p, 6, "bye all") == "1"
    bye = callee.wait_for(sippeer.is_request("BYE"), "BYE at the callee")
    assert bye.cseq_num == 7 and hdr(bye, "Reason") is None, bye.raw  # above OPTIONS 6
    bye = caller.wait_for(sippeer.is_request("BYE"), "BYE at the caller")
    assert bye.cseq_num == 3, bye.raw  # above our MESSAGE 2
    assert live_once(rpc, "reqs@test", gone) == []
    assert act(caller, ok, p, 8, "req callee INFO") == "-1"  # no dialog any more


def test_dlg_set_ruri(dlg_proxy, peers):
    # in-dialog requests addressed to a stale target: dlg_set_ruri() sends
    # each to the stored remote target of the side it travels to
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering_everything(), "ruri@test",
                                        caller_side=answering_everything())
    stale = "sip:stale@127.0.0.1:9"
    down = sippeer.request("MESSAGE", stale, caller, call_id=ok.call_id, cseq=2, to=ok.get("to"),
                           routes=list(reversed(ok.all("record-route"))), extra=["X-Set-Ruri: 1"])
    caller.send(down, p.port)
    got = callee.wait_for(sippeer.is_request("MESSAGE"), "MESSAGE at the callee")
    assert got.ruri == callee.uri, got.raw

    invite = callee.wait_for(sippeer.is_request("INVITE"), "INVITE")
    up = sippeer.request("MESSAGE", stale, callee, call_id=ok.call_id, cseq=1, from_tag="callee",
                         to=invite.get("from"), routes=invite.all("record-route"), extra=["X-Set-Ruri: 1"])
    callee.send(up, p.port)
    got = caller.wait_for(sippeer.is_request("MESSAGE"), "MESSAGE at the caller")
    assert got.ruri == caller.uri, got.raw
    assert p.log_text().count("dlg_set_ruri: 1") == 2


def test_requests_of_the_script_for_another_call(dlg_proxy, peers):
    # dlg_req_within() after dlg_get() from the route of unrelated OPTIONS
    # (with two workers their Call-IDs land on both: the request is sent by
    # the call's owner): an INFO to each side per probe, CSeqs one apart
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering_everything(), "req-get@test",
                                        caller_side=answering_everything())
    for _ in range(6):
        assert options_about(p, "req-get@test", "caller", "callee", "req").get("X-Req") == "1"
    for side, first in ((callee, 2), (caller, 1)):
        deadline = time.monotonic() + 5
        while len(infos := distinct([m for m in side.received if sippeer.is_request("INFO")(m)])) < 6:
            assert time.monotonic() < deadline, infos
            time.sleep(0.05)
        assert sorted(m.cseq_num for m in infos) == list(range(first, first + 6)), infos
        assert all(hdr(m, "X-By") == "dlg_get" for m in infos)


def test_variables_of_another_call(dlg_proxy, peers):
    # dlg_set_var()/dlg_get_var() name a call by Call-ID and tags (either
    # orientation, or the caller's tag alone) from the route of unrelated
    # OPTIONS, whichever worker owns it, and leave no current dialog
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    confirmed_call(p, peers, answering_everything(), "vars@test", caller_side=answering_everything())
    names = [("caller", "callee"), ("callee", "caller"), ("caller", "")]
    for i, (ft, tt) in enumerate(names * 2):
        r = probe(p, ["X-Var-Call: vars@test", f"X-Var-Ftag: {ft}", f"X-Var-Ttag: {tt}", f"X-Var-Set: v{i}"])
        assert (r.get("x-set"), r.get("x-get"), r.get("x-value")) == ("1", "1", f"v{i}"), (ft, tt, r)
        assert r.get("x-known") == "-1", r  # no current dialog after either
    for ft, tt in (("caller", "nobody"), ("nobody", ""), ("callee", "")):
        r = probe(p, ["X-Var-Call: vars@test", f"X-Var-Ftag: {ft}", f"X-Var-Ttag: {tt}", "X-Var-Set: x"])
        assert (r.get("x-set"), r.get("x-get")) == ("-1", "-1"), (ft, tt, r)
    r = probe(p, ["X-Var-Call: vars@test", "X-Var-Ftag: caller", "X-Var-Ttag: callee", "X-Var-Set: "])
    assert (r.get("x-set"), r.get("x-get")) == ("1", "-1"), r  # an empty value removes it


def test_set_timeout_by_ids(dlg_proxy_rpc, peers):
    # dlg_set_timeout(seconds, h_entry, h_id) from the route of unrelated
    # OPTIONS, whichever worker owns the call: the lifetime restarts, and
    # the call ends with dialog_timeout BYEs; unknown ids give -1
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering(), "ids@test")
    [d] = live(rpc, "ids@test")
    assert d["lifetime"] == 43200
    assert probe(p, [f"X-Timeout-Of: {d['h_entry']} {d['h_id'] + 1000} 1"]).get("x-rc") == "-1"
    assert probe(p, [f"X-Timeout-Of: {d['h_entry']} {d['h_id']} 1"]).get("x-rc") == "1"
    assert live(rpc, "ids@test")[0]["lifetime"] == 1
    bye = caller.wait_for(sippeer.is_request("BYE"), "BYE on the new timeout", timeout=5)
    assert hdr(bye, "Reason") == 'SIP;cause=200;text="dialog_timeout"', bye.raw
    callee.wait_for(sippeer.is_request("BYE"), "BYE at the callee")


def test_set_timeout_by_profile(dlg_proxy_rpc, peers):
    # three calls, two in profile group=a and one in group=b:
    # dlg_set_timeout_by_profile("group", "a", 1) from unrelated OPTIONS
    # changes the two (whichever worker owns each) and ends them with
    # dialog_timeout BYEs; the third keeps its lifetime
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "profiles_with_value"): "group"})
    callee = peers("callee", answering_everything())
    caller = peers("caller", answering_everything())
    for n, value in ((1, "a"), (2, "a"), (3, "b")):
        caller.send(sippeer.request("INVITE", callee.uri, caller, call_id=f"prof{n}@test",
                                    extra=[f"X-Profile: group={value}"]), p.port)
        ok = caller.wait_for(lambda m, c=f"prof{n}@test": sippeer.is_response(200, "INVITE")(m)
                             and m.call_id == c, f"200 of call {n}")
        caller.send(caller_in_dialog("ACK", caller, ok, 1), p.port)
    assert probe(p, ["X-Timeout-Profile: group zzz 1"]).get("x-rc") == "-1"
    assert probe(p, ["X-Timeout-Profile: group a 1"]).get("x-rc") == "2"
    for n in (1, 2):
        caller.wait_for(lambda m, c=f"prof{n}@test": sippeer.is_request("BYE")(m) and m.call_id == c,
                        f"BYE of call {n}", timeout=5)
    # a call ends when both its BYEs are answered: the callee's answer may
    # still be on its way when the caller has its BYE
    deadline = time.monotonic() + 5
    while len(live := [d for d in rpc("dlg.list") if d["state"] < 5]) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    [d] = live
    assert d["call-id"] == "prof3@test" and d["lifetime"] == 43200, d


@pytest.mark.parametrize("answer", [202, 603])
def test_refer(dlg_proxy_rpc, peers, answer):
    # dlg_refer("callee", uri): a REFER to the callee as the caller would
    # send it, without implicit subscription; accepted, the call ends with
    # BYEs to both sides; refused, it goes on
    def callee_side(peer, m):
        if m.is_request and m.method != "ACK" and sippeer.first_time(peer, m):
            code = answer if m.method == "REFER" else 200
            peer.answer(m, code, "Accepted" if code == 202 else ("OK" if code == 200 else "Decline"),
                        "callee" if m.method == "INVITE" else None)

    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, callee_side, f"refer{answer}@test",
                                        caller_side=answering_everything())
    assert act(caller, ok, p, 2, "refer all sip:x@127.0.0.1") == "-1"
    assert act(caller, ok, p, 3, "refer callee sip:new@127.0.0.1:5099") == "1"
    refer = callee.wait_for(sippeer.is_request("REFER"), "REFER at the callee")
    assert refer.ruri == callee.uri and refer.cseq_num == 4, refer.raw  # above the caller's OPTIONS 3
    assert hdr(refer, "From").endswith("tag=caller") and hdr(refer, "To").endswith("tag=callee"), refer.raw
    assert hdr(refer, "Refer-To") == "<sip:new@127.0.0.1:5099>" and hdr(refer, "Refer-Sub") == "false", refer.raw
    if answer == 202:
        for side in (caller, callee):
            bye = side.wait_for(sippeer.is_request("BYE"), f"BYE at the {side.name}")
            assert hdr(bye, "Reason") == 'SIP;cause=200;text="transferred"', bye.raw
        assert live_once(rpc, f"refer{answer}@test", gone) == []
    else:
        time.sleep(1)
        assert not [m for m in caller.received + callee.received if m.method == "BYE"]
        assert live(rpc, f"refer{answer}@test")[0]["state"] == 4
        assert f"dialog refer603@test: REFER refused with 603: the call goes on" in p.log_text()


@pytest.mark.parametrize("by", ["cid", "did"])
def test_refer_of_another_call(dlg_proxy_rpc, peers, by):
    # dlg_refer_cid(callid, side, uri) and dlg_refer_did(h_entry, h_id,
    # side, uri) from an unrelated OPTIONS (any worker may own it): a REFER
    # to the caller as the callee would send it; the caller's 200 ends the
    # call; unknown ids and a bad side give -1
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering_everything(), f"refer-{by}@test",
                                        caller_side=answering_everything())
    [d] = live(rpc, f"refer-{by}@test")
    which = {"cid": (f"refer-{by}@test", "no-such-call@test"),
             "did": (f"{d['h_entry']} {d['h_id']}", f"{d['h_entry']} {d['h_id'] + 1000}")}[by]
    assert probe(p, [f"X-Do: refer_{by} {which[1]} caller sip:new@127.0.0.1:5099"]).get("x-rc") == "-1"
    assert probe(p, [f"X-Do: refer_{by} {which[0]} both sip:new@127.0.0.1:5099"]).get("x-rc") == "-1"
    assert probe(p, [f"X-Do: refer_{by} {which[0]} caller sip:new@127.0.0.1:5099"]).get("x-rc") == "1"
    refer = caller.wait_for(sippeer.is_request("REFER"), "REFER at the caller")
    assert refer.ruri == caller.uri and refer.cseq_num == 1, refer.raw  # the callee had sent nothing
    assert hdr(refer, "From").endswith("tag=callee") and hdr(refer, "To").endswith("tag=caller"), refer.raw
    assert hdr(refer, "Refer-To") == "<sip:new@127.0.0.1:5099>", refer.raw
    for side in (caller, callee):
        bye = side.wait_for(sippeer.is_request("BYE"), f"BYE at the {side.name}")
        assert hdr(bye, "Reason") == 'SIP;cause=200;text="transferred"', bye.raw
    assert live_once(rpc, f"refer-{by}@test", gone) == []


def test_set_state_ends_a_call_without_byes(dlg_proxy_rpc, peers):
    # dlg.set_state callid ftag ttag (5): the call is ended here, without
    # a BYE to either side; the counters and the profile follow at once and
    # the record lingers, so that the UA's own BYE is still routed
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "profiles_with_value"): "group"})
    caller, callee, ok = confirmed_call(p, peers, answering(), "forget@test",
                                        extra=["X-Profile: group=a"])
    assert rpc("dlg.profile_get_size", ["group", "a"]) == 1
    assert rpc("stats.fetchn", ["active_dialogs"]) == {"dialog.active_dialogs": 1}
    assert rpc("dlg.set_state", ["forget@test", "caller", "callee", 5]) == "Done"
    assert live(rpc, "forget@test") == []
    assert [d["state"] for d in rpc("dlg.list") if d["call-id"] == "forget@test"] == [5]
    assert rpc("dlg.profile_get_size", ["group", "a"]) == 0
    assert rpc("stats.fetchn", ["active_dialogs"]) == {"dialog.active_dialogs": 0}
    time.sleep(1)
    assert not [m for m in caller.received + callee.received if m.method == "BYE"]
    caller.send(caller_in_dialog("BYE", caller, ok, 2), p.port)
    callee.wait_for(sippeer.is_request("BYE"), "the caller's BYE at the callee")
    caller.wait_for(sippeer.is_response(200, "BYE"), "200 for the BYE")


def test_dump_file_appends_a_line_per_dialog(dlg_proxy_rpc, peers, tmp_path):
    # dlg.dump_file FILE: each dialog as a line of JSON with dlg.list's
    # fields, appended at every call
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    callee = peers("callee", answering())
    caller = peers("caller", answering_bye)
    for n in (1, 2, 3):
        caller.send(sippeer.request("INVITE", callee.uri, caller, call_id=f"dump{n}@test"), p.port)
        caller.wait_for(lambda m, c=f"dump{n}@test": sippeer.is_response(200, "INVITE")(m)
                        and m.call_id == c, f"200 of call {n}")
    listed = {d["call-id"]: d for d in rpc("dlg.list")}
    path = tmp_path / "dialogs.jsonl"
    assert rpc("dlg.dump_file", [str(path)]) == {"file": str(path), "dialogs": 3}
    assert rpc("dlg.dump_file", {"file": str(path)}) == {"file": str(path), "dialogs": 3}
    lines = path.read_text().splitlines()
    assert len(lines) == 6
    dumped = [json.loads(line) for line in lines]
    assert sorted(d["call-id"] for d in dumped) == sorted(2 * list(listed)), lines
    for d in dumped:
        want = listed[d["call-id"]]
        assert set(d) == set(want), d
        for key in ("h_entry", "h_id", "state", "from_uri", "to_uri", "caller", "callee"):
            assert d[key] == want[key], (key, d, want)


def test_remote_profile_members(dlg_proxy_rpc, peers):
    # dlg_remote_profile(): calls of another server counted in a profile
    # beside our own call, by uid (on whichever worker the uid hashes to),
    # until removed or expired; not listed as dialogs, not touched by
    # dlg_set_timeout_by_profile(); bad arguments give -1
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "profiles_with_value"): "group",
                                      ("ims_dialog", "profiles_no_value"): "total"})
    confirmed_call(p, peers, answering(), "local@test", extra=["X-Profile: group=a"])

    def remote(what: str) -> str:
        return probe(p, [f"X-Remote: {what}"]).get("x-rc")

    soon = int(time.time()) + 3
    assert remote("add group a u1 0") == "1"
    assert remote(f"add group a u2 {soon}") == "1"
    assert remote("add group b u3 0") == "1"
    assert remote("add total - u3 0") == "1"
    assert remote("add group a u1 0") == "1"  # the same membership again
    assert rpc("dlg.profile_get_size", ["group", "a"]) == 3
    assert rpc("dlg.profile_get_size", ["group"]) == 4
    assert rpc("dlg.profile_get_size", ["total"]) == 1
    assert [d["call-id"] for d in rpc("dlg.profile_list", ["group", "a"])] == ["local@test"]
    assert probe(p, ["X-Timeout-Profile: group a 600"]).get("x-rc") == "1"

    for bad in ("add group - u4 0", "add nosuch a u4 0", "move group a u4 0",
                f"add group a u4 {int(time.time()) - 10}", "rm group a nosuch 0"):
        assert remote(bad) == "-1", bad
    assert remote("rm group a u1 0") == "1"
    assert remote("rm group a u1 0") == "-1"
    assert remote("rm group - u3 0") == "1"  # every value of u3 in group
    assert rpc("dlg.profile_get_size", ["group"]) == 2
    assert rpc("dlg.profile_get_size", ["total"]) == 1

    deadline = time.monotonic() + 8
    while rpc("dlg.profile_get_size", ["group", "a"]) != 1:
        assert time.monotonic() < deadline, "u2 did not expire"
        time.sleep(0.2)
    assert time.time() >= soon - 1
    assert rpc("dlg.profile_get_size", ["total"]) == 1


@pytest.mark.parametrize("by", ["script", "rpc"])
def test_bridge(dlg_proxy_rpc, peers, by):
    # dlg_bridge(from, to) / dlg.bridge_dlg: the proxy calls `from` with a
    # hold offer, ACKs its 2xx (again for a retransmitted one, through the
    # route set the Record-Route gave, reversed), REFERs it to `to`, then
    # hangs up; no dialog is tracked. Refused (486), the INVITE's ACK is
    # hop by hop and nothing follows.
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"})
    rr = None

    def bob_side(peer, m):
        if not m.is_request or m.method == "ACK" or not sippeer.first_time(peer, m):
            return
        if m.method == "INVITE":
            extra = [f"Record-Route: <sip:far@127.0.0.1:9;lr>, <sip:near@127.0.0.1:{peer.port};lr>"]
            peer.answer(m, 200, "OK", "bob", extra=extra)
            peer.answer(m, 200, "OK", "bob", delay=0.3, extra=extra)  # as if the ACK were lost
        else:
            peer.answer(m, 202 if m.method == "REFER" else 200, "OK")

    bob = peers("bob", bob_side)
    carol = peers("carol", lambda peer, m: m.is_request and m.method == "INVITE"
                  and sippeer.first_time(peer, m) and peer.answer(m, 486, "Busy Here", "carol"))
    if by == "script":
        # through an outbound proxy: bob itself, as the first Route
        assert probe(p, [f"X-Bridge: {bob.uri} sip:alice@example.org sip:127.0.0.1:{bob.port}"]).get("x-rc") == "1"
        assert probe(p, [f"X-Bridge: {carol.uri} sip:alice@example.org ."]).get("x-rc") == "1"
        assert probe(p, ["X-Bridge: nonsense sip:alice@example.org"]).get("x-rc") == "-1"
    else:
        assert rpc("dlg.bridge_dlg", [bob.uri, "sip:alice@example.org"]) == "Bridging"
        assert rpc("dlg.bridge_dlg", [carol.uri, "sip:alice@example.org", ".", "_"]) == "Bridging"

    invite = bob.wait_for(sippeer.is_request("INVITE"), "INVITE at bob")
    assert invite.ruri == bob.uri and hdr(invite, "To") == f"<{bob.uri}>", invite.raw
    assert re.fullmatch(r"<sip:controller@kamailio\.org>;tag=\w+", hdr(invite, "From")), invite.raw
    assert hdr(invite, "Contact") == "<sip:controller@kamailio.org:5060>", invite.raw
    assert hdr(invite, "CSeq") == "1 INVITE" and hdr(invite, "Content-Type") == "application/sdp", invite.raw
    assert "\r\nc=IN IP4 0.0.0.0\r\n" in invite.raw and "m=audio 9 RTP/AVP 8 0" in invite.raw, invite.raw
    assert hdr(invite, "Route") == (f"<sip:127.0.0.1:{bob.port};lr>" if by == "script" else None), invite.raw

    refer = bob.wait_for(sippeer.is_request("REFER"), "REFER at bob")
    bye = bob.wait_for(sippeer.is_request("BYE"), "BYE at bob")
    acks = [m for m in bob.received if m.method == "ACK" and m.is_request]
    deadline = time.monotonic() + 3
    while len(acks) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        acks = [m for m in bob.received if m.method == "ACK" and m.is_request]
    assert len(acks) == 2 and acks[0].vias[0] == acks[1].vias[0], [a.raw for a in acks]
    ack = acks[0]
    assert ack.ruri == bob.uri and hdr(ack, "CSeq") == "1 ACK", ack.raw
    assert hdr(ack, "To").endswith("tag=bob") and hdr(ack, "From") == hdr(invite, "From"), ack.raw
    assert hdr(ack, "Route") == f"<sip:near@127.0.0.1:{bob.port};lr>, <sip:far@127.0.0.1:9;lr>", ack.raw
    assert ack.vias[0] != invite.vias[0], ack.raw  # a transaction of its own
    for m, cseq in ((refer, "2 REFER"), (bye, "3 BYE")):
        assert m.ruri == bob.uri and hdr(m, "CSeq") == cseq and m.call_id == invite.call_id, m.raw
        assert hdr(m, "From") == hdr(invite, "From") and hdr(m, "To").endswith("tag=bob"), m.raw
        assert hdr(m, "Route") == hdr(ack, "Route"), m.raw
    assert hdr(refer, "Refer-To") == "sip:alice@example.org", refer.raw
    assert hdr(refer, "Referred-By") == "sip:controller@kamailio.org", refer.raw

    refused = carol.wait_for(sippeer.is_request("INVITE"), "INVITE at carol")
    if by == "rpc":  # body "_": no offer
        assert hdr(refused, "Content-Length") == "0" and hdr(refused, "Content-Type") is None, refused.raw
    carol_ack = carol.wait_for(sippeer.is_request("ACK"), "ACK of the 486 at carol")
    assert carol_ack.vias[0] == refused.vias[0] and carol_ack.ruri == refused.ruri, carol_ack.raw
    time.sleep(0.5)
    assert not [m for m in carol.received if m.method in ("REFER", "BYE")]
    assert rpc("dlg.list") == []


def test_validate_dialog(dlg_proxy, peers):
    # validate_dialog() on in-dialog MESSAGEs: as the dialog says, relayed;
    # a CSeq below what the callee saw (-2), another Request-URI (-3), a
    # Route entry the route set does not have (-4): 400 from the script
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"})
    caller, callee, ok = confirmed_call(p, peers, answering_everything(), "valid@test",
                                        caller_side=answering_everything())
    routes = list(reversed(ok.all("record-route")))

    def message(cseq, ruri=None, extra_route=None):
        rs = routes + ([extra_route] if extra_route else [])
        caller.send(sippeer.request("MESSAGE", ruri or uri_of(ok.get("contact")), caller, call_id=ok.call_id,
                                    cseq=cseq, to=ok.get("to"), routes=rs, extra=["X-Validate: 1"]), p.port)
        return caller.wait_for(lambda m: m.cseq_num == cseq and not m.is_request and m.code >= 200,
                               f"final for MESSAGE {cseq}")

    assert message(5).code == 200
    assert (message(3).code, message(3).reason) == (400, "Invalid Dialog -2")
    assert message(6, ruri="sip:other@127.0.0.1:9").reason == "Invalid Dialog -3"
    assert message(7, extra_route="<sip:evil@127.0.0.1:9;lr>").reason == "Invalid Dialog -4"
    assert message(8).code == 200
    assert [m.cseq_num for m in distinct([m for m in callee.received if sippeer.is_request("MESSAGE")(m)])] == [5, 8]

    invite = callee.wait_for(sippeer.is_request("INVITE"), "INVITE")
    callee.send(sippeer.request("MESSAGE", caller.uri, callee, call_id=ok.call_id, cseq=1, from_tag="callee",
                                to=invite.get("from"), routes=invite.all("record-route"),
                                extra=["X-Validate: 1"]), p.port)
    got = caller.wait_for(sippeer.is_request("MESSAGE"), "the callee's MESSAGE at the caller")
    assert got.cseq_num == 1, got.raw


def test_ages_per_state(dlg_proxy_rpc, peers):
    # dlg.ages: one call ringing, one answered, one ended (lingering
    # end_timeout): each counted in its state, aged on that state's clock
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "end_timeout"): 30})
    caller, callee, ok = confirmed_call(p, peers, answering(), "ages-up@test")
    ringer = peers("ringer", sippeer.ringing_callee("ringer"))
    assert ring(caller, ringer.uri, p.port, "ages-ringing@test")[1].code == 180
    ring(caller, callee.uri, p.port, "ages-ended@test")
    ended = caller.wait_for(lambda m: sippeer.is_response(200, "INVITE")(m) and m.call_id == "ages-ended@test",
                            "200 of the third call")
    caller.send(caller_in_dialog("ACK", caller, ended, 1), p.port)
    caller.send(caller_in_dialog("BYE", caller, ended, 2), p.port)
    caller.wait_for(lambda m: sippeer.is_response(200, "BYE")(m) and m.call_id == "ages-ended@test", "200 BYE")
    time.sleep(1.2)
    states = {s["state"]: s for s in rpc("dlg.ages")["states"]}
    assert [states[n]["dialogs"] for n in (1, 2, 3, 4, 5)] == [0, 1, 0, 1, 1], states
    assert states[2]["name"] == "Early" and states[4]["name"] == "Confirmed", states
    for n in (2, 4, 5):
        assert 1 <= states[n]["oldest"] < 10 and states[n]["ages"]["under_10s"] == 1, states[n]
        assert sum(states[n]["ages"].values()) == 1, states[n]


def test_send_bye_0_forgets_an_expired_call(dlg_proxy_rpc, peers):
    # Kamailio's send_bye 0: at expiry the dialog is counted expired and
    # forgotten, no BYE goes out
    p, rpc = dlg_proxy_rpc("dialog.lua", subst={"REASON": "unused"},
                           modparams={("ims_dialog", "default_timeout"): 1, ("dialog", "send_bye"): 0})
    caller, callee, ok = confirmed_call(p, peers, answering(), "nobye@test")
    assert live_once(rpc, "nobye@test", gone, within=5) == []
    assert rpc("stats.fetchn", ["expired_dialogs"]) == {"dialog.expired_dialogs": 1}
    time.sleep(0.5)
    assert not [m for m in caller.received + callee.received if m.method == "BYE"]


def test_lreq_callee_headers(dlg_proxy, peers):
    # lreq_callee_headers go into our requests towards the callee only
    p = dlg_proxy("dialog.lua", subst={"REASON": "hdrs"},
                  modparams={("dialog", "lreq_callee_headers"): "X-To-Callee: yes\\r\\n"})
    caller, callee, ok = confirmed_call(p, peers, answering(), "lreq@test")
    caller.send(info(caller, ok, 2, "all"), p.port)
    to_callee = callee.wait_for(sippeer.is_request("BYE"), "BYE to the callee")
    to_caller = caller.wait_for(sippeer.is_request("BYE"), "BYE to the caller")
    assert hdr(to_callee, "X-To-Callee") == "yes", to_callee.raw
    assert hdr(to_caller, "X-To-Callee") is None, to_caller.raw
