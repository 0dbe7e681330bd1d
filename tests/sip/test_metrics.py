"""GET /metrics and stats.* over every statistics group (docs/metrics.md,
docs/rpc.md) against imsdlgd with ims_dialog and HTTP RPC: SIPp calls move
the core/tmx/dialog counters by exactly what the scenarios send, the
scrape (parsed with Debian's python3-prometheus-client) says what
stats.fetchn says, profile sizes what dlg.profile_get_size says,
reset_statistics zeroes counters and not gauges, the prefix knobs, the
token, and a config naming an unknown profile. imsdlgd only."""
from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from prometheus_client.parser import text_string_to_metric_families

import conftest
from sipwire import requests

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="rpc_listen and /metrics are imsdlgd's")

TENANT = 'we"ird\\x y'  # the value metrics.lua puts in profile "tenant"
PROFILE_MODPARAMS = {
    ("ims_dialog", "profiles_with_value"): "caller;tenant",
    ("ims_dialog", "profiles_no_value"): "calls",
    ("ims_dialog", "metrics_profiles"): "caller; calls;tenant",
    ("tm", "wt_timer"): 100,  # transactions gone soon after a call
}
# Levels; every other statistic is a counter.
GAUGES = {"dialog.active_dialogs", "dialog.early_dialogs", "dns.cache_entries", "dns.pending_lookups",
          "tmx.inuse_transactions", "tmx.active_transactions", "tcp.current_opened_connections",
          "tcp.current_write_queue_size"}


class Node:
    """The HTTP endpoint of one started proxy."""

    def __init__(self, proxy, port: int, prefix: str = "imsdlg_"):
        self.proxy, self.port, self.prefix = proxy, port, prefix

    def http(self, method: str, path: str, body: str | None = None,
             token: str | None = None) -> tuple[int, str, str]:
        """(status, Content-Type, body)."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, ctype, data = conftest.http_request(self.port, method, path, body, headers)
        return status, ctype, data.decode()

    def call(self, method: str, params=None, token: str | None = None):
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        status, _, body = self.http("POST", "/RPC", json.dumps(req), token)
        reply = json.loads(body)
        assert status == 200 and "error" not in reply, (method, params, status, reply)
        return reply["result"]

    def stats(self) -> dict[str, int]:
        return self.call("stats.fetchn", ["all"])

    def scrape(self, token: str | None = None) -> str:
        status, ctype, body = self.http("GET", "/metrics", token=token)
        assert status == 200, (status, body)
        assert ctype == "text/plain; version=0.0.4; charset=utf-8"
        return body

    def quiet(self, gone: bool = True) -> dict[str, int]:
        """Waits until no transaction is active (with gone: none is left in
        memory either; a confirmed dialog holds its INVITE's) and nothing
        changes for 0.3 s."""
        deadline = time.monotonic() + 10
        last = None
        while True:
            s = self.stats()
            if (s["tmx.active_transactions"] == 0
                    and (not gone or s["tmx.inuse_transactions"] == 0) and s == last):
                return s
            assert time.monotonic() < deadline, s
            last = s
            time.sleep(0.3)


@pytest.fixture
def metrics_proxy(proxy, monkeypatch, tmp_path):
    """metrics_proxy(extra=[...], modparams={...}, prefix="imsdlg_",
    lua="metrics.lua") -> Node of a proxy running that script with
    ims_dialog, three profiles on /metrics and HTTP RPC on a free port."""

    def start(extra: list[str] | None = None, modparams: dict | None = None,
              prefix: str = "imsdlg_", lua: str = "metrics.lua") -> Node:
        http_port = conftest.free_port()
        orig = conftest.render_cfg

        def render(kind, port, children, lua, mp=None, debug=2, **kw):
            text = orig(kind, port, children, lua, mp, debug, **kw)
            text = text.replace('loadmodule "app_lua.so"',
                                'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')
            lines = [f"rpc_listen=http:{conftest.HOST}:{http_port}"] + (extra or [])
            return text.replace(f"children={children}\n",
                                f"children={children}\n" + "\n".join(lines) + "\n")

        monkeypatch.setattr(conftest, "render_cfg", render)
        p = proxy(lua, modparams={**PROFILE_MODPARAMS, **(modparams or {})})
        return Node(p, http_port, prefix)

    return start


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, name: str, labels: dict | None = None) -> float:
    """The sample of family name (with exactly these labels)."""
    found = [s.value for s in fams[name].samples if s.labels == (labels or {})]
    assert len(found) == 1, (name, labels, fams[name].samples)
    return found[0]


def metric_name(node: Node, key: str) -> str:
    group, name = key.split(".", 1)
    return f"{node.prefix}{group}_{name}"


# Kamailio's core counts requests of these methods, and replies by class to
# requests of the second list (the statistic's name, the method).
KAM_REQ_METHODS = ["INVITE", "CANCEL", "ACK", "BYE", "INFO", "REGISTER", "SUBSCRIBE", "NOTIFY",
                   "MESSAGE", "OPTIONS", "PRACK", "UPDATE", "REFER", "PUBLISH"]
KAM_RPL_METHODS = [("invite", "INVITE"), ("cancel", "CANCEL"), ("bye", "BYE"), ("reg", "REGISTER"),
                   ("message", "MESSAGE"), ("prack", "PRACK"), ("update", "UPDATE"), ("refer", "REFER")]
# Kamailio's sl: codes with a statistic of their own; the others count in
# their class (xxx outside 100-699).
KAM_SL_CODES = [200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500]
# The names of the groups core and sl of Debian's Kamailio 5.6.3 (kex, sl),
# as `kamcmd stats.get_statistics all` listed them on 2026-11-29.
KAMAILIO_CORE = (
    "bad_URIs_rcvd bad_msg_hdr drop_replies drop_requests err_replies err_requests fwd_replies "
    "fwd_requests rcv_replies rcv_replies_18x rcv_replies_1xx rcv_replies_2xx rcv_replies_3xx "
    "rcv_replies_401 rcv_replies_404 rcv_replies_407 rcv_replies_480 rcv_replies_486 "
    "rcv_replies_4xx rcv_replies_5xx rcv_replies_6xx rcv_requests rcv_requests_ack rcv_requests_bye "
    "rcv_requests_cancel rcv_requests_info rcv_requests_invite rcv_requests_message "
    "rcv_requests_notify rcv_requests_options rcv_requests_prack rcv_requests_publish "
    "rcv_requests_refer rcv_requests_register rcv_requests_subscribe rcv_requests_update "
    "unsupported_methods").split() + [
    f"rcv_replies_{c}xx_{m}" for c in range(1, 7)
    for m in ("bye", "cancel", "invite", "message", "prack", "refer", "reg", "update")]
KAMAILIO_SL = ("1xx_replies 200_replies 202_replies 2xx_replies 300_replies 301_replies 302_replies "
               "3xx_replies 400_replies 401_replies 403_replies 404_replies 407_replies 408_replies "
               "483_replies 4xx_replies 500_replies 5xx_replies 6xx_replies failures received_ACKs "
               "sent_err_replies sent_replies xxx_replies").split()

KAMAILIO_TCP = ("con_reset con_timeout connect_failed connect_success current_opened_connections "
                "current_write_queue_size established local_reject passive_open send_timeout "
                "sendq_full").split()


def core_counts(requests_in: list[str], replies_in: list[tuple[str, int]]) -> dict[str, int]:
    """Kamailio's per-method and per-class core counters for these requests
    (methods) and replies (method of the CSeq, code) received."""
    want = {f"core.rcv_requests_{m.lower()}": requests_in.count(m) for m in KAM_REQ_METHODS}
    want["core.unsupported_methods"] = len([m for m in requests_in if m not in KAM_REQ_METHODS])
    for cls in range(1, 7):
        want[f"core.rcv_replies_{cls}xx"] = len([c for _, c in replies_in if c // 100 == cls])
        for name, method in KAM_RPL_METHODS:
            want[f"core.rcv_replies_{cls}xx_{name}"] = len(
                [c for m, c in replies_in if m == method and c // 100 == cls])
    want["core.rcv_replies_18x"] = len([c for _, c in replies_in if 180 <= c <= 189])
    for code in (401, 404, 407, 480, 486):
        want[f"core.rcv_replies_{code}"] = len([c for _, c in replies_in if c == code])
    return want


def sl_counts(codes: list[int]) -> dict[str, int]:
    """Kamailio's sl counters for these stateless replies sent."""
    want = {f"sl.{c}_replies": codes.count(c) for c in KAM_SL_CODES}
    for cls in range(1, 7):
        want[f"sl.{cls}xx_replies"] = len([c for c in codes if c // 100 == cls and c not in KAM_SL_CODES])
    want["sl.xxx_replies"] = len([c for c in codes if not 100 <= c < 700])
    want["sl.sent_replies"] = len(codes)
    return want


def scenario_replies(name: str) -> list[tuple[str, int]]:
    """The replies one call of a SIPp UAS scenario sends: (the method of the
    request received last, code)."""
    out, method = [], ""
    for step in ET.parse(conftest.SCENARIOS / name).getroot():
        if step.tag == "recv" and step.get("request"):
            method = step.get("request")
        elif step.tag == "send" and step.text.split()[0] == "SIP/2.0":
            out.append((method, int(step.text.split()[1])))
    return out


def scenario_sends(name: str) -> tuple[list[str], list[int]]:
    """What one call of a SIPp scenario sends: the methods of its requests
    and the codes of its replies, in order."""
    reqs, rpls = [], []
    for send in ET.parse(conftest.SCENARIOS / name).getroot().iter("send"):
        first = send.text.split()
        if first[0] == "SIP/2.0":
            rpls.append(int(first[1]))
        else:
            reqs.append(first[0])
    return reqs, rpls


def check_scrape_matches(node: Node, children: int, gone: bool = True) -> dict:
    """On a quiet proxy: stats.fetchn, /metrics, stats.fetchn again; every
    statistic is in the scrape once, with HELP, TYPE and the same value."""
    before = node.quiet(gone)
    text = node.scrape()
    after = node.stats()
    assert before == after, "the proxy was not quiet"
    fams = families(text)
    # every family has its HELP and TYPE lines
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    samples = {line.split("{")[0].split(" ")[0]
               for line in text.splitlines() if line and not line.startswith("#")}
    assert samples <= helps and samples == set(types), samples ^ set(types)
    for key, v in after.items():
        name = metric_name(node, key)
        assert name in fams, f"{key} ({name}) not on /metrics"
        want = "gauge" if key in GAUGES or key.startswith("shard.") else "counter"
        assert fams[name].type == want, (key, fams[name].type)
        assert fams[name].documentation, key
        assert value(fams, name) == v, (key, v, fams[name].samples)
    queues = sorted(k for k in after if k.startswith("shard."))
    assert queues == [f"shard.queue_depth_{i}" for i in range(children)]
    return fams


def check_process(fams: dict) -> None:
    """Prometheus' process_* names, un-prefixed, with plausible values."""
    now = time.time()
    assert fams["process_cpu_seconds"].type == "counter"
    assert value(fams, "process_cpu_seconds") > 0
    assert fams["process_resident_memory_bytes"].type == "gauge"
    assert value(fams, "process_resident_memory_bytes") > 1 << 20
    assert now - 3600 < value(fams, "process_start_time_seconds") <= now + 1
    assert 0 < value(fams, "process_open_fds") <= value(fams, "process_max_fds")


def tcp_calls(node: Node, sipp, n: int):
    """n calls, caller and callee on TCP (no retransmission can blur the
    counts)."""
    uas = sipp.uas("uas_call.xml", transport="tcp", calls=n, timeout=60)
    uac = sipp.uac("uac_call.xml", node.proxy, uas.port, transport="tcp", calls=n,
                   rate=5, timeout=60,
                   keys={"ruri": f"sip:service@127.0.0.1:{uas.port};transport=tcp"})
    assert uac.rc == 0 and uac.successful_calls() == n, uac.explain()
    assert uas.wait(30) == 0, uas.explain()
    return uac, uas


def test_counters_of_calls_and_scrape(metrics_proxy, sipp, children):
    node = metrics_proxy()
    start = node.quiet()
    n = 3
    uac, uas = tcp_calls(node, sipp, n)
    assert int(uac.stats().get("Retransmissions(C)", 0)) == 0
    got = node.quiet()
    delta = {k: got[k] - start[k] for k in got}

    reqs, _ = scenario_sends("uac_call.xml")  # INVITE, ACK, BYE
    _, rpls = scenario_sends("uas_call.xml")  # 180, 200, 200
    finals = [c for c in rpls if c >= 200]
    want = {
        # the caller's requests reach the proxy, which relays each one:
        # INVITE and BYE by a transaction, the ACK of the 2xx statelessly
        "core.rcv_requests": len(reqs) * n,
        "core.fwd_requests": len(reqs) * n,
        "core.rcv_replies": len(rpls) * n,
        "core.fwd_replies": len(rpls) * n,
        "tmx.UAS_transactions": len([m for m in reqs if m != "ACK"]) * n,
        "tmx.UAC_transactions": 0,
        "tmx.rpl_received": len(rpls) * n,
        "tmx.rpl_relayed": len(rpls) * n,
        # auto_inv_100: a 100 Trying for each INVITE
        "tmx.rpl_generated": reqs.count("INVITE") * n,
        "tmx.rpl_sent": (len(rpls) + reqs.count("INVITE")) * n,
        "tmx.rpl_absorbed": 0,
        "tmx.retransmissions": 0,
        "dialog.processed_dialogs": reqs.count("INVITE") * n,
        "dialog.failed_dialogs": 0,
        "dialog.expired_dialogs": 0,
        "sl.sent_replies": 0,
    }
    for cls in range(2, 7):
        want[f"tmx.{cls}xx_transactions"] = len([c for c in finals if c // 100 == cls]) * n
    for k in ("drop_requests", "drop_replies", "err_requests", "err_replies", "bad_msg_hdr",
              "bad_URIs_rcvd"):
        want[f"core.{k}"] = 0
    want.update({k: v * n for k, v in core_counts(reqs, scenario_replies("uas_call.xml")).items()})
    want.update(sl_counts([]))
    want["sl.sent_err_replies"] = want["sl.failures"] = want["sl.received_ACKs"] = 0
    # SIPp (-t t1) opens one connection to the proxy, the proxy one to
    # the UAS; both are closed (by SIPp, at its end) when it is quiet
    want.update({"tcp.passive_open": 1, "tcp.connect_success": 1, "tcp.established": 2,
                 "tcp.connect_failed": 0, "tcp.local_reject": 0, "tcp.con_timeout": 0,
                 "tcp.con_reset": 0, "tcp.sendq_full": 0, "tcp.send_timeout": 0})
    assert {k: delta[k] for k in want} == want
    assert got["tcp.current_opened_connections"] == got["tcp.current_write_queue_size"] == 0
    # every statistic of those groups is here, and was asked for
    assert {k for k in got if k.startswith(("core.", "sl.", "tcp."))} - set(want) == {
        "tcp.current_opened_connections", "tcp.current_write_queue_size"}
    assert got["tmx.active_transactions"] == 0
    assert got["dialog.active_dialogs"] == 0
    assert len(requests(uas.received(), "BYE")) == n

    fams = check_scrape_matches(node, children)
    check_process(fams)
    # profiles: every call has ended
    sizes = fams[f"{node.prefix}dialog_profile_size"]
    assert sizes.type == "gauge"
    assert sorted((s.labels["profile"], s.labels["value"], s.value) for s in sizes.samples) == [
        ("caller", "", 0), ("calls", "", 0), ("tenant", "", 0)]


def raw_request(method: str, ruri: str, port: int, name: str, max_forwards: int = 70,
                to_tag: str | None = "", extra: tuple[str, ...] = ()) -> bytes:
    """A request from 127.0.0.1:port without Route, in a dialog (To tag
    t-name, or to_tag) unless to_tag is None, with extra header lines."""
    to = "" if to_tag is None else f";tag={to_tag or 't-' + name}"
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{name};rport\r\n"
            f"Max-Forwards: {max_forwards}\r\nFrom: <sip:a@127.0.0.1>;tag=f-{name}\r\n"
            f"To: <sip:b@127.0.0.1>{to}\r\nCall-ID: {name}@127.0.0.1\r\n"
            f"CSeq: 1 {method}\r\n" + "".join(f"{h}\r\n" for h in extra) +
            "Content-Length: 0\r\n\r\n").encode()


def raw_reply(code: int, method: str, name: str) -> bytes:
    """A reply to a request this proxy never sent (its Via is not ours)."""
    return (f"SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{name}\r\n"
            f"From: <sip:a@127.0.0.1>;tag=f-{name}\r\nTo: <sip:b@127.0.0.1>;tag=t-{name}\r\n"
            f"Call-ID: {name}@127.0.0.1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n").encode()


def test_counts_by_method_and_code(metrics_proxy):
    """Kamailio's counters by method and by code: requests of known and
    unknown methods, refused ones (Max-Forwards, URI scheme, a Request-URI
    that does not parse), replies of every class to requests of several
    methods. Each moves exactly its counters of the groups core and sl."""
    node = metrics_proxy()
    start = node.quiet()
    # (method, Request-URI, Max-Forwards, the reply's code): metrics.lua
    # answers 404 to an in-dialog request it cannot route
    asked = [("MESSAGE", "sip:b@127.0.0.1", 70, 404), ("FOO", "sip:b@127.0.0.1", 70, 404),
             ("OPTIONS", "sip:b@127.0.0.1", 0, 483), ("OPTIONS", "foo:bar", 70, 416),
             ("INFO", "sip:b@[::1", 70, 400), ("PUBLISH", "sip:b@127.0.0.1", 70, 404),
             # metrics.lua's sl_reply_error(): a 500, an error reply
             ("NOTIFY", "sip:b@127.0.0.1", 70, 500)]
    replies = [("REGISTER", 401), ("PRACK", 486), ("UPDATE", 183), ("REFER", 302), ("MESSAGE", 503),
               ("CANCEL", 603), ("NOTIFY", 202), ("BYE", 404), ("INVITE", 480), ("INVITE", 407),
               ("INVITE", 180), ("SUBSCRIBE", 200)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((conftest.HOST, 0))
        s.settimeout(5)
        port = s.getsockname()[1]
        for i, (method, ruri, mf, code) in enumerate(asked):
            extra = ("X-Reply-Error: 1",) if code == 500 else ()
            s.sendto(raw_request(method, ruri, port, f"q{i}", mf, extra=extra), (conftest.HOST, node.proxy.port))
            got = s.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
            assert got.startswith(f"SIP/2.0 {code} "), (method, ruri, got)
        for i, (method, code) in enumerate(replies):
            s.sendto(raw_reply(code, method, f"r{i}"), (conftest.HOST, node.proxy.port))
        # an initial INVITE refused statelessly, and its ACK (same branch,
        # the 483's To tag): sl absorbs it. An ACK with another tag is the
        # script's.
        s.sendto(raw_request("INVITE", "sip:b@127.0.0.1", port, "inv", 0, None),
                 (conftest.HOST, node.proxy.port))
        reply = s.recv(65535).decode()
        assert reply.startswith("SIP/2.0 483 "), reply
        tag = re.search(r"^To: [^\r]*;tag=([^;\r]+)", reply, re.M).group(1)
        for to_tag in (tag, "0123456789abcdef"):
            s.sendto(raw_request("ACK", "sip:b@127.0.0.1", port, "inv", 0, to_tag),
                     (conftest.HOST, node.proxy.port))
    got = node.quiet()
    delta = {k: got[k] - start[k] for k in got if k.startswith(("core.", "sl."))}

    asked.append(("INVITE", "", 0, 483))
    want = {f"core.{k}": 0 for k in KAMAILIO_CORE}
    want.update({f"sl.{k}": 0 for k in KAMAILIO_SL})
    want.update(core_counts([m for m, *_ in asked] + ["ACK", "ACK"], replies))
    want.update(sl_counts([c for *_, c in asked]))
    want.update({"core.rcv_requests": len(asked) + 2, "core.rcv_replies": len(replies),
                 "sl.received_ACKs": 1,
                 # not ours: each reply is dropped
                 "core.drop_replies": len(replies),
                 "core.err_requests": 1, "core.bad_URIs_rcvd": 1,
                 # the 416 and the 400 refuse a request, the 500 is
                 # sl_reply_error()'s
                 "sl.sent_err_replies": 3})
    assert delta == want, {k: (delta.get(k), want.get(k)) for k in set(delta) | set(want)
                           if delta.get(k) != want.get(k)}


def test_tcp_connections(metrics_proxy):
    """Group tcp: a connection accepted and left idle is closed after
    tcp_connection_lifetime; one the peer resets; a connection the proxy
    cannot open (a request relayed to a closed TCP port gets 503)."""
    node = metrics_proxy(extra=["tcp_connection_lifetime=1"])
    start = node.quiet()
    addr = (conftest.HOST, node.proxy.port)
    idle = socket.create_connection(addr, timeout=10)
    reset = socket.create_connection(addr, timeout=10)
    deadline = time.monotonic() + 5
    while node.stats()["tcp.current_opened_connections"] < 2:
        assert time.monotonic() < deadline, node.stats()
        time.sleep(0.05)
    # SO_LINGER 0: close() sends a RST
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.close()
    # the proxy closes the idle one: end of stream
    assert idle.recv(100) == b""
    idle.close()

    closed_port = conftest.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((conftest.HOST, 0))
        s.settimeout(10)
        s.sendto(raw_request("OPTIONS", f"sip:b@127.0.0.1:{closed_port};transport=tcp",
                             s.getsockname()[1], "tcp", to_tag=None), addr)
        reply = s.recv(65535).decode()
        while reply.startswith("SIP/2.0 100 "):
            reply = s.recv(65535).decode()
        assert reply.startswith("SIP/2.0 503 "), reply
    # the OPTIONS' transaction lingers (timer J) for retransmissions
    got = node.quiet(gone=False)
    delta = {k: got[k] - start[k] for k in got if k.startswith("tcp.")}
    assert delta == {"tcp.passive_open": 2, "tcp.established": 2, "tcp.connect_success": 0,
                     "tcp.connect_failed": 1, "tcp.local_reject": 0, "tcp.con_timeout": 1,
                     "tcp.con_reset": 1, "tcp.sendq_full": 0, "tcp.send_timeout": 0,
                     "tcp.current_opened_connections": 0, "tcp.current_write_queue_size": 0}


def test_tcp_max_connections(metrics_proxy):
    """tcp_max_connections=2: a third connection is accepted and closed at
    once (tcp.local_reject); once one of the two closes, a new one stays."""
    node = metrics_proxy(extra=["tcp_max_connections=2"])
    start = node.quiet()
    addr = (conftest.HOST, node.proxy.port)
    kept = [socket.create_connection(addr, timeout=5) for _ in range(2)]
    deadline = time.monotonic() + 5
    while node.stats()["tcp.current_opened_connections"] < 2:
        assert time.monotonic() < deadline, node.stats()
        time.sleep(0.05)
    with socket.create_connection(addr, timeout=5) as third:
        assert third.recv(100) == b"", "the third connection was kept"
    kept.pop().close()
    deadline = time.monotonic() + 5
    while node.stats()["tcp.current_opened_connections"] > 1:
        assert time.monotonic() < deadline, node.stats()
        time.sleep(0.05)
    again = socket.create_connection(addr, timeout=0.5)
    with pytest.raises(socket.timeout):
        again.recv(100)  # kept open: nothing to read, no end of stream
    got = node.stats()
    assert got["tcp.local_reject"] - start["tcp.local_reject"] == 1, got
    assert got["tcp.passive_open"] - start["tcp.passive_open"] == 3, got
    assert got["tcp.current_opened_connections"] == 2, got
    again.close()
    kept[0].close()


def test_tcp_connect_timeout(metrics_proxy):
    """A callee whose listener never completes a connection (its accept
    queue is full, so the kernel drops the proxy's SYNs): after
    tcp_connect_timeout (1 s) the branch gets a 503, where it would wait
    for fr_timer's 408 (2 s here) otherwise, and tcp.connect_failed counts
    it."""
    node = metrics_proxy(extra=["tcp_connect_timeout=1"])
    start = node.quiet()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        lst.bind((conftest.HOST, 0))
        lst.listen(0)
        fillers = []
        for _ in range(3):  # a backlog of 0 still queues one: fill it
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(lst.getsockname())
            fillers.append(f)
        time.sleep(0.2)
        s.bind((conftest.HOST, 0))
        s.settimeout(5)
        s.sendto(raw_request("OPTIONS", f"sip:b@127.0.0.1:{lst.getsockname()[1]};transport=tcp",
                             s.getsockname()[1], "stuck", to_tag=None), (conftest.HOST, node.proxy.port))
        reply = s.recv(65535).decode()
        while reply.startswith("SIP/2.0 1"):
            reply = s.recv(65535).decode()
        for f in fillers:
            f.close()
    assert reply.startswith("SIP/2.0 503 "), reply
    got = node.quiet(gone=False)
    assert got["tcp.connect_failed"] - start["tcp.connect_failed"] == 1, got
    assert got["tcp.current_opened_connections"] == 0, got


def test_tcp_send_timeout(metrics_proxy):
    """A callee that accepts and never reads: once bytes have waited
    tcp_send_timeout (1 s) to be written to it, the proxy closes the
    connection (tcp.send_timeout) and forgets what waited."""
    node = metrics_proxy(extra=["tcp_send_timeout=1"])
    start = node.quiet()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lst.bind((conftest.HOST, 0))
        lst.listen(1)
        s.bind((conftest.HOST, 0))
        body = "v=0\r\n" + "a=x" * 16000 + "\r\n"  # ~48 KB
        for i in range(100):  # ~5 MB: more than the sockets hold, less than sendq_full's 8 MiB
            msg = raw_request("OPTIONS", f"sip:b@127.0.0.1:{lst.getsockname()[1]};transport=tcp",
                              s.getsockname()[1], f"big{i}", to_tag=None)
            msg = msg.replace(b"Content-Length: 0\r\n\r\n",
                              f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
            s.sendto(msg, (conftest.HOST, node.proxy.port))
            time.sleep(0.002)
        conn, _ = lst.accept()
        deadline = time.monotonic() + 10
        while node.stats()["tcp.send_timeout"] == start["tcp.send_timeout"]:
            assert time.monotonic() < deadline, node.stats()
            time.sleep(0.1)
        got = node.stats()
        assert got["tcp.current_opened_connections"] == 0 and got["tcp.current_write_queue_size"] == 0, got
        assert got["tcp.sendq_full"] == start["tcp.sendq_full"], got
        conn.close()


def test_kamailio_names(metrics_proxy):
    """The groups core, sl, tcp and dns have Kamailio 5.6's statistics, by
    name."""
    names = metrics_proxy().stats()
    assert sorted(k[5:] for k in names if k.startswith("core.")) == sorted(KAMAILIO_CORE)
    assert sorted(k[3:] for k in names if k.startswith("sl.")) == sorted(KAMAILIO_SL)
    assert sorted(k[4:] for k in names if k.startswith("tcp.")) == sorted(KAMAILIO_TCP)
    # dns: Kamailio's two, and the resolver's own
    assert {"failed_dns_request", "slow_dns_request"} <= {k[4:] for k in names if k.startswith("dns.")}


def held_call(node: Node, sipp):
    """A confirmed call that only the proxy ends (UDP); returns (uac, uas,
    dialog) once dlg.list shows it confirmed and the callee has the ACK."""
    uas = sipp.uas("uas_call.xml", timeout=60)
    uac = sipp.uac("dlg_uac_wait_bye.xml", node.proxy, uas.port,
                   keys={"ruri": f"sip:service@127.0.0.1:{uas.port}"},
                   timeout=30, wait=False)
    deadline = time.monotonic() + 10
    while True:
        dlgs = node.call("dlg.list")
        if dlgs and dlgs[0]["state"] == 4 and requests(uas.received(), "ACK"):
            return uac, uas, dlgs[0]
        assert time.monotonic() < deadline, f"no confirmed dialog: {dlgs}"
        time.sleep(0.1)


def test_profiles_and_reset(metrics_proxy, sipp, children):
    # T1 of 2 s: on loopback nothing is retransmitted, so counts are exact
    node = metrics_proxy(modparams={("tm", "retr_timer1"): 2000})
    uac, uas, d = held_call(node, sipp)

    # profile sizes: what dlg.profile_get_size says, escaped value included
    fams = check_scrape_matches(node, children, gone=False)
    sizes = {(s.labels["profile"], s.labels["value"]): s.value
             for s in fams["imsdlg_dialog_profile_size"].samples}
    assert sizes == {("caller", ""): 1, ("caller", "sipp"): 1, ("calls", ""): 1,
                     ("tenant", ""): 1, ("tenant", TENANT): 1}
    for (profile, val), v in sizes.items():
        params = [profile, val] if val else [profile]
        assert node.call("dlg.profile_get_size", params) == v, (profile, val)
    assert node.call("dlg.profile_get_size", ["tenant", "other"]) == 0

    # reset: every counter 0, the gauges as they were
    before = node.quiet(gone=False)
    assert before["dialog.active_dialogs"] == 1 and before["tmx.UAS_transactions"] > 0
    assert node.call("stats.reset_statistics", ["all"]) == {}
    after = node.stats()
    text = node.scrape()
    fams = families(text)
    for key, v in after.items():
        kind = fams[metric_name(node, key)].type
        if kind == "counter":
            assert v == 0, key
        else:
            assert v == before[key], key
    assert value(fams, "imsdlg_dialog_active_dialogs") == 1
    assert value(fams, "imsdlg_dialog_profile_size", {"profile": "calls", "value": ""}) == 1
    assert value(fams, "imsdlg_tmx_UAS_transactions") == 0

    # the proxy ends the call: two BYEs it originates, nothing forwarded
    assert node.call("dlg.end_dlg", [d["h_entry"], d["h_id"]]) == {}
    assert uac.wait(30) == 0, uac.explain()
    assert uas.wait(30) == 0, uas.explain()
    got = node.quiet()
    assert {k: got[k] for k in ("tmx.UAC_transactions", "tmx.UAS_transactions",
                                "core.fwd_requests", "core.rcv_requests",
                                "core.rcv_replies", "tmx.rpl_received",
                                "tmx.rpl_absorbed", "tmx.rpl_relayed",
                                "tmx.retransmissions", "dialog.active_dialogs",
                                "dialog.processed_dialogs")} == {
        "tmx.UAC_transactions": 2, "tmx.UAS_transactions": 0,
        "core.fwd_requests": 0, "core.rcv_requests": 0,
        # the answers to our own BYEs stop here
        "core.rcv_replies": 2, "tmx.rpl_received": 2, "tmx.rpl_absorbed": 2,
        "tmx.rpl_relayed": 0, "tmx.retransmissions": 0,
        "dialog.active_dialogs": 0, "dialog.processed_dialogs": 0}
    check_scrape_matches(node, children)

    # clear_statistics: the values, then they restart
    lines = node.call("stats.clear_statistics", ["tmx:UAC_transactions"])
    assert lines == ["tmx:UAC_transactions = 2"]
    assert node.call("stats.fetch", ["tmx.UAC_transactions"]) == {"tmx.UAC_transactions": "0"}


@pytest.mark.parametrize("knob", ["metrics_prefix", "xhttp_prom_beginning", "both"])
def test_prefix(metrics_proxy, knob):
    extra, modparams = [], {}
    if knob in ("metrics_prefix", "both"):
        extra.append('metrics_prefix="kamailio_"')
    if knob in ("xhttp_prom_beginning", "both"):
        extra += ['loadmodule "xhttp.so"', 'loadmodule "xhttp_prom.so"']
        # metrics_prefix wins over Kamailio's knob when both are set
        modparams[("xhttp_prom", "xhttp_prom_beginning")] = \
            "other_" if knob == "both" else "kamailio_"
    node = metrics_proxy(extra=extra, modparams=modparams, prefix="kamailio_")
    text = node.scrape()
    fams = families(text)
    for name in ("kamailio_tmx_UAS_transactions", "kamailio_core_rcv_requests",
                 "kamailio_dialog_active_dialogs", "kamailio_sl_sent_replies",
                 "kamailio_shard_queue_depth_0", "kamailio_dialog_profile_size"):
        assert name in fams, name
    assert "process_cpu_seconds" in fams
    assert not [n for n in fams if not n.startswith(("kamailio_", "process_"))]
    assert "imsdlg_" not in text and "other_" not in text


def test_token(metrics_proxy, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    token_file.chmod(0o600)
    node = metrics_proxy(extra=[f'rpc_token="{token_file}"'])
    for token in (None, "wrong"):
        status, _, _ = node.http("GET", "/metrics", token=token)
        assert status == 401, token
    assert "imsdlg_tmx_UAS_transactions" in families(node.scrape(token="s3cret"))


PROM_MODPARAMS = {("xhttp_prom", "prom_counter"): "name=sip_requests;label=method",
                  ("xhttp_prom", "prom_gauge"): "name=load;label=node:zone;",
                  ("xhttp_prom", "prom_histogram"): "name=latency;buckets=0.1:1:10"}


def test_script_metrics(metrics_proxy):
    """Kamailio's xhttp_prom metrics: declared by modparam, moved by the
    script, on /metrics with their labels; a histogram's buckets, sum and
    count; calls the declaration does not allow return -1 and move
    nothing."""
    node = metrics_proxy(extra=['loadmodule "xhttp.so"', 'loadmodule "xhttp_prom.so"'],
                         modparams=PROM_MODPARAMS, lua="prom.lua")

    def options(name: str, extra: list[str]) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((conftest.HOST, 0))
            s.settimeout(5)
            msg = raw_request("OPTIONS", "sip:b@127.0.0.1", s.getsockname()[1], name, to_tag=None)
            msg = msg.replace(b"Content-Length", "".join(f"{h}\r\n" for h in extra).encode() + b"Content-Length")
            s.sendto(msg, (conftest.HOST, node.proxy.port))
            reply = s.recv(65535).decode()
        assert reply.startswith("SIP/2.0 200 "), reply
        return re.search(r"^X-Ret: ?(.*)\r$", reply, re.M).group(1)

    assert options("g", ["X-Gauge: 2.5", "X-Observe: 0.05"]) == "1 1"
    assert options("h", ["X-Observe: 5", "X-Observe: 7"]) == "1"  # the first X-Observe
    assert options("w", ["X-Wrong: 1"]) == "-1 -1 -1 -1 -1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((conftest.HOST, 0))
        s.settimeout(5)
        s.sendto(raw_request("MESSAGE", "sip:b@127.0.0.1", s.getsockname()[1], "m"), (conftest.HOST, node.proxy.port))
        assert s.recv(65535).startswith(b"SIP/2.0 404 ")

    fams = families(node.scrape())
    counter, gauge, hist = fams["imsdlg_sip_requests"], fams["imsdlg_load"], fams["imsdlg_latency"]
    assert counter.type == "counter" and gauge.type == "gauge" and hist.type == "histogram"
    assert {s.labels["method"]: s.value for s in counter.samples} == {"OPTIONS": 3, "MESSAGE": 1}
    assert [(s.labels, s.value) for s in gauge.samples] == [({"node": "n1", "zone": "z1"}, 2.5)]
    got = {(s.name, s.labels.get("le")): s.value for s in hist.samples}
    assert got == {("imsdlg_latency_bucket", "0.1"): 1, ("imsdlg_latency_bucket", "1"): 1,
                   ("imsdlg_latency_bucket", "10"): 2, ("imsdlg_latency_bucket", "+Inf"): 2,
                   ("imsdlg_latency_sum", None): 5.05, ("imsdlg_latency_count", None): 2}

    assert options("r", ["X-Reset: 1"]) == "1"
    fams = families(node.scrape())
    assert {s.labels["method"]: s.value for s in fams["imsdlg_sip_requests"].samples} == {"OPTIONS": 0, "MESSAGE": 1}

    # Kamailio's xhttp_prom.* methods move them too
    node.call("xhttp_prom.gauge_set", ["load", 7.25, "n2", "z2"])
    node.call("xhttp_prom.counter_inc", ["sip_requests", 5, "RPC"])
    node.call("xhttp_prom.counter_reset", ["sip_requests", "MESSAGE"])
    for params in (["nosuch", 1], ["sip_requests", -1, "RPC"], ["load", "x", "n2", "z2"], ["load", 1, "n2"]):
        method = "xhttp_prom.gauge_set" if params[0] == "load" else "xhttp_prom.counter_inc"
        status, _, body = node.http("POST", "/RPC", json.dumps(
            {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}))
        assert json.loads(body)["error"]["code"] == 500, (params, body)
    fams = families(node.scrape())
    assert {s.labels["method"]: s.value for s in fams["imsdlg_sip_requests"].samples} == {
        "OPTIONS": 0, "MESSAGE": 0, "RPC": 5}
    assert {(s.labels["node"], s.value) for s in fams["imsdlg_load"].samples} == {("n1", 2.5), ("n2", 7.25)}


@pytest.mark.parametrize("line,why", [
    ('modparam("ims_dialog", "metrics_profiles", "caller;nope")',
     'ims_dialog metrics_profiles: no profile "nope"'),
    ('metrics_prefix="bad-prefix"', "letters, digits and '_' only"),
    ('modparam("xhttp_prom", "prom_counter", "name=1st")', "name must be"),
    ('modparam("xhttp_prom", "prom_counter", "name=c;label=a:b:c:d")', "at most 3 labels"),
    ('modparam("xhttp_prom", "prom_histogram", "name=h;buckets=1:0.5")', "buckets must be increasing"),
    ('modparam("xhttp_prom", "prom_gauge", "label=a")', "no name="),
    ('modparam("xhttp_prom", "prom_gauge", "name=dialog_active_dialogs")', "must not start with"),
    ('modparam("xhttp_prom", "prom_gauge", "name=calls")\nmodparam("xhttp_prom", "prom_counter", "name=calls")',
     "a metric of that name is declared already"),
])
def test_config_errors(tmp_path, line, why):
    ok, reason = conftest.proxy_available()
    if not ok:
        pytest.skip(reason)
    lua = tmp_path / "metrics.lua"
    lua.write_text(conftest.render_lua("metrics.lua"))
    modparams = {k: v for k, v in PROFILE_MODPARAMS.items() if k[1] not in line}
    text = conftest.render_cfg("imsdlgd", conftest.free_port(), 1, lua, modparams)
    text = text.replace('loadmodule "app_lua.so"',
                        'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')
    cfg = tmp_path / "bad.cfg"
    if "xhttp_prom" in line:
        line = 'loadmodule "xhttp.so"\nloadmodule "xhttp_prom.so"\n' + line
    cfg.write_text(text + line + "\n")
    lineno = len(text.splitlines()) + line.count("\n") + 1  # the last line
    r = subprocess.run([str(conftest.IMSDLGD), "-c", "-f", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert f"{cfg}:{lineno}:" in r.stderr and why in r.stderr, r.stderr
