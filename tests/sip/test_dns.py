"""Destinations that are names (RFC 3263: NAPTR, SRV, A/AAAA, failover),
looked up without blocking.

A real name server answers: dnsmasq on 127.0.0.1 (Debian package
dnsmasq-base; conftest's `nameserver` fixture), started by each test with
the records it needs, serving the zone "test" and logging every query it
gets, so that a test can tell what the proxy asked. A dead name server is
a UDP socket that never answers.

imsdlgd only: Kamailio takes its name servers from /etc/resolv.conf alone,
so it cannot be pointed at one on another port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

import conftest
from sippeer import cancel_for, is_final, is_request, is_response, reply, request
from sipwire import uri_of

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="Kamailio reads name servers only from /etc/resolv.conf")


def dns_core(server: str, **more) -> dict:
    return {"dns_servers": server, **more}


def test_call_to_a_name_with_a_port(proxy, sipp, nameserver):
    ns = nameserver(["--host-record=uas.test,127.0.0.1"])
    p = proxy("default.lua", core=dns_core(ns.server))
    uas = sipp.uas("uas_call.xml", timeout=20)
    uac = sipp.uac("uac_call.xml", p, uas.port, keys={"ruri": f"sip:service@uas.test:{uas.port}"}, timeout=20)
    assert uac.rc == 0, uac.explain()
    assert uas.wait(20) == 0, uas.explain()
    invite = next(m for m in uas.received() if m.is_request and m.method == "INVITE")
    assert invite.ruri == f"sip:service@uas.test:{uas.port}", "the Request-URI keeps its name"
    # a port in the URI: addresses only, no SRV (RFC 3263 §4.2)
    assert ns.queries("A", "uas.test") >= 1
    assert ns.queries("SRV", "_sip._udp.uas.test") == 0


def test_srv_without_a_port(proxy, peers, nameserver):
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    ns = nameserver(["--host-record=host-a.test,127.0.0.1",
                     f"--srv-host=_sip._udp.svc.test,host-a.test,{callee.port},10,0"])
    p = proxy("default.lua", core=dns_core(ns.server))
    caller = peers("caller")
    caller.send(request("OPTIONS", "sip:alice@svc.test", caller), p.port)

    got = callee.wait_for(is_request("OPTIONS"), "OPTIONS at the SRV target's port")
    assert got.ruri == "sip:alice@svc.test"
    caller.wait_for(is_response(200, "OPTIONS"), "the callee's 200 back at the caller")
    assert ns.queries("SRV", "_sip._udp.svc.test") == 1
    assert ns.queries("A", "host-a.test") == 1


def test_srv_lowest_priority_first_and_tcp_asks_tcp(proxy, peers, nameserver):
    first = peers("first", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    second = peers("second", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    tcp_callee = peers.tcp("tcpcallee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    ns = nameserver(["--host-record=host-a.test,127.0.0.1",
                     # listed first, but of the higher priority value: tried second
                     f"--srv-host=_sip._udp.prio.test,host-a.test,{second.port},20,0",
                     f"--srv-host=_sip._udp.prio.test,host-a.test,{first.port},10,0",
                     f"--srv-host=_sip._tcp.prio.test,host-a.test,{tcp_callee.port},10,0"])
    p = proxy("default.lua", core=dns_core(ns.server))
    caller = peers("caller")
    for i in range(3):
        caller.send(request("OPTIONS", "sip:alice@prio.test", caller, call_id=f"prio-{i}@test"), p.port)
    for i in range(3):
        caller.wait_for(lambda m, i=i: is_response(200, "OPTIONS")(m) and m.call_id == f"prio-{i}@test",
                        f"200 of request {i}")
    assert len([m for m in first.received if m.is_request]) == 3
    assert not [m for m in second.received if m.is_request], "a priority-20 target got a request"

    caller.send(request("OPTIONS", "sip:alice@prio.test;transport=tcp", caller, call_id="tcp@test"), p.port)
    got = tcp_callee.wait_for(is_request("OPTIONS"), "OPTIONS over TCP at the _sip._tcp target")
    assert "SIP/2.0/TCP" in got.vias[0]
    assert ns.queries("SRV", "_sip._tcp.prio.test") == 1


def rpc(port: int, method: str, params=None):
    body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1, "params": params or []})
    status, _, data = conftest.http_request(port, "POST", "/RPC", body, {"Content-Type": "application/json"})
    reply = json.loads(data)
    assert status == 200 and "result" in reply, (status, reply)
    return reply["result"]


def answers(code: int, reason: str):
    """A callee that answers every request but ACK with code (To tag "t")."""
    return lambda peer, m: peer.answer(m, code, reason, "t") if m.is_request and m.method != "ACK" else None


def test_srv_weights_within_a_priority(proxy, peers, nameserver):
    heavy = peers("heavy", answers(200, "OK"))
    light = peers("light", answers(200, "OK"))
    ns = nameserver(["--host-record=host-a.test,127.0.0.1",
                     f"--srv-host=_sip._udp.weighted.test,host-a.test,{light.port},10,1",
                     f"--srv-host=_sip._udp.weighted.test,host-a.test,{heavy.port},10,9"])
    # nothing cached: every request draws again (RFC 2782: weight 9 of 10)
    p = proxy("default.lua", core=dns_core(ns.server, dns_cache_max_ttl=0))
    caller = peers("caller")
    n = 40
    for i in range(n):
        caller.send(request("OPTIONS", "sip:w@weighted.test", caller, call_id=f"w{i}@test"), p.port)
        caller.wait_for(lambda m, i=i: is_response(200, "OPTIONS")(m) and m.call_id == f"w{i}@test", f"200 {i}")
    to_heavy = len([m for m in heavy.received if m.is_request])
    to_light = len([m for m in light.received if m.is_request])
    assert to_heavy + to_light == n
    # binomial(40, 0.9): below 26 once in ~10^6 runs; a draw that ignored
    # the weights would give ~20, one that never drew 40 or 0
    assert 26 <= to_heavy < n, (to_heavy, to_light)
    assert ns.queries("SRV", "_sip._udp.weighted.test") == n


def test_concurrent_lookups_of_a_name_share_one(proxy, peers, dead_nameserver, children):
    server = f"127.0.0.1:{dead_nameserver.getsockname()[1]}"
    p = proxy("default.lua", core=dns_core(server, dns_retr_time=2, dns_retr_no=1),
              modparams={("tm", "fr_timer"): 10000, ("tm", "fr_inv_timer"): 10000})
    caller = peers("caller")
    n = 8
    for i in range(n):
        caller.send(request("INVITE", "sip:f@silent.test:5060", caller, call_id=f"share-{i}@test"), p.port)
    finals = {}
    deadline = time.monotonic() + 8
    while len(finals) < n and time.monotonic() < deadline:
        for m in caller.received:
            if is_final("INVITE")(m):
                finals[m.call_id] = m.code
        time.sleep(0.1)
    assert sorted(finals) == sorted(f"share-{i}@test" for i in range(n))
    assert set(finals.values()) == {478}
    # one lookup per worker, asking A and AAAA once (one try): not one per
    # request
    asked = _queries_seen(dead_nameserver)
    assert 2 <= asked <= 2 * children, f"{asked} queries for {n} requests"


def test_failover_to_the_next_srv_target_when_one_is_silent(proxy, peers, nameserver):
    silent = peers("silent")  # receives, never answers
    backup = peers("backup", answers(200, "OK"))
    ns = nameserver(["--host-record=host-a.test,127.0.0.1",
                     f"--srv-host=_sip._udp.fo.test,host-a.test,{silent.port},10,0",
                     f"--srv-host=_sip._udp.fo.test,host-a.test,{backup.port},20,0"])
    rpc_port = conftest.free_port()
    p = proxy("default.lua", core=dns_core(ns.server, rpc_listen=f"http:127.0.0.1:{rpc_port}"))
    caller = peers("caller")
    caller.send(request("OPTIONS", "sip:x@fo.test", caller, call_id="fo-silent@test"), p.port)
    ok = caller.wait_for(is_final("OPTIONS"), "final response", timeout=6)
    assert ok.code == 200, ok.raw
    first = silent.wait_for(is_request("OPTIONS"), "OPTIONS at the first target")
    second = backup.wait_for(is_request("OPTIONS"), "OPTIONS at the backup")
    # the backup's branch came after fr_timer (2 s in the tests) ran out on the first
    assert second.top_branch != first.top_branch
    assert second.at - first.at >= 1.9, (first.at, second.at)
    assert len({m.top_branch for m in silent.received}) == 1, "the silent target got a second branch"
    stats = rpc(rpc_port, "stats.fetchn", ["dns:"])
    assert stats["dns.failovers"] == 1 and stats["dns.lookups"] == 1, stats


@pytest.mark.parametrize("failover", [1, 0])
def test_a_503_fails_over_unless_told_not_to(proxy, peers, nameserver, failover):
    busy = peers("busy", answers(503, "Service Unavailable"))
    backup = peers("backup", answers(200, "OK"))
    ns = nameserver(["--host-record=host-a.test,127.0.0.1",
                     f"--srv-host=_sip._udp.fo.test,host-a.test,{busy.port},10,0",
                     f"--srv-host=_sip._udp.fo.test,host-a.test,{backup.port},20,0"])
    p = proxy("default.lua", core=dns_core(ns.server, use_dns_failover=failover))
    caller = peers("caller")
    caller.send(request("INVITE", "sip:x@fo.test", caller, call_id="fo-503@test"), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response")
    busy.wait_for(is_request("ACK"), "the proxy's ACK of the 503")
    if failover:
        assert final.code == 200, final.raw
        assert len([m for m in backup.received if is_request("INVITE")(m)]) == 1
    else:
        # RFC 3261 §16.7 step 6: the only reply, a 503, goes up as a 500
        assert (final.code, final.reason) == (500, "Service Unavailable"), final.raw
        time.sleep(0.3)
        assert not backup.received, "use_dns_failover=0 and the backup got a request"


def test_ipv4_addresses_first(proxy, peers, nameserver, monkeypatch):
    # the proxy can send to both families; the name has both; a callee
    # listens on each, same port: the IPv4 one gets the request (as on
    # Kamailio, which asks AAAA only when A gives nothing)
    conftest.listen_also(monkeypatch, "udp", "[::1]")
    v4 = peers("v4", answers(200, "OK"))
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v6.bind(("::1", v4.port))
    v6.settimeout(0.5)
    try:
        ns = nameserver(["--host-record=dual.test,127.0.0.1,::1"])
        p = proxy("default.lua", core=dns_core(ns.server))
        caller = peers("caller")
        caller.send(request("OPTIONS", f"sip:d@dual.test:{v4.port}", caller), p.port)
        caller.wait_for(is_response(200, "OPTIONS"), "200 from the IPv4 callee")
        with pytest.raises(socket.timeout):
            v6.recvfrom(2048)
        assert ns.queries("AAAA", "dual.test") >= 1, "the name's IPv6 address was not asked"
    finally:
        v6.close()


def naptr_zone(tcp_port: int, udp_port: int) -> list[str]:
    return ["--host-record=host-a.test,127.0.0.1",
            # order 10 before 20; SIPS+D2T (TLS) is not a transport of ours
            "--naptr-record=np.test,5,10,s,SIPS+D2T,,_sips._tcp.np.test",
            "--naptr-record=np.test,20,10,s,SIP+D2U,,_sip._udp.np.test",
            "--naptr-record=np.test,10,10,s,SIP+D2T,,_sip._tcp.np.test",
            f"--srv-host=_sip._tcp.np.test,host-a.test,{tcp_port},10,0",
            f"--srv-host=_sip._udp.np.test,host-a.test,{udp_port},10,0",
            f"--srv-host=_sip._udp.plain.test,host-a.test,{udp_port},10,0"]


def test_naptr_chooses_the_transport(proxy, peers, nameserver):
    tcp_callee = peers.tcp("tcpcallee", answers(200, "OK"))
    udp_callee = peers("udpcallee", answers(200, "OK"))
    ns = nameserver(naptr_zone(tcp_callee.port, udp_callee.port))
    p = proxy("default.lua", core=dns_core(ns.server, dns_try_naptr=1))
    caller = peers("caller")
    caller.send(request("OPTIONS", "sip:n@np.test", caller), p.port)
    got = tcp_callee.wait_for(is_request("OPTIONS"), "OPTIONS over TCP, as the first NAPTR says")
    assert got.vias[0].startswith("SIP/2.0/TCP"), got.vias[0]
    caller.wait_for(is_response(200, "OPTIONS"), "200")
    assert not udp_callee.received
    assert ns.queries("NAPTR", "np.test") == 1 and ns.queries("SRV", "_sip._tcp.np.test") == 1
    # a transport in the URI (or a name without NAPTR records): no NAPTR
    # choice (§4.1), the SRV records of that transport
    caller.send(request("OPTIONS", "sip:n@np.test;transport=udp", caller, call_id="udp@test"), p.port)
    caller.send(request("OPTIONS", "sip:n@plain.test", caller, call_id="plain@test"), p.port)
    for call_id in ("udp@test", "plain@test"):
        udp_callee.wait_for(lambda m, c=call_id: is_request("OPTIONS")(m) and m.call_id == c, f"{call_id} over UDP")
    assert ns.queries("NAPTR", "np.test") == 1 and ns.queries("NAPTR", "plain.test") == 1


def test_naptr_is_not_asked_by_default(proxy, peers, nameserver):
    tcp_callee = peers.tcp("tcpcallee", answers(200, "OK"))
    udp_callee = peers("udpcallee", answers(200, "OK"))
    ns = nameserver(naptr_zone(tcp_callee.port, udp_callee.port))
    p = proxy("default.lua", core=dns_core(ns.server))  # dns_try_naptr=0, as Kamailio's default
    caller = peers("caller")
    caller.send(request("OPTIONS", "sip:n@np.test", caller), p.port)
    udp_callee.wait_for(is_request("OPTIONS"), "OPTIONS over UDP (_sip._udp)")
    caller.wait_for(is_response(200, "OPTIONS"), "200")
    assert not tcp_callee.received and ns.queries("NAPTR", "np.test") == 0


def test_answers_are_cached_per_worker(proxy, peers, nameserver, children):
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    ns = nameserver(["--host-record=cached.test,127.0.0.1"])
    rpc_port = conftest.free_port()
    p = proxy("default.lua", core=dns_core(ns.server, rpc_listen=f"http:127.0.0.1:{rpc_port}"))
    caller = peers("caller")
    n = 12
    for i in range(n):
        caller.send(request("OPTIONS", f"sip:bob@cached.test:{callee.port}", caller, call_id=f"c{i}@test"),
                    p.port)
        caller.wait_for(lambda m, i=i: is_response(200, "OPTIONS")(m) and m.call_id == f"c{i}@test", f"200 {i}")
    assert len([m for m in callee.received if m.is_request]) == n
    # each worker has its own cache: at most one lookup per worker
    asked = ns.queries("A", "cached.test")
    assert 1 <= asked <= children, f"{asked} queries for {n} requests and {children} workers"
    stats = rpc(rpc_port, "stats.fetchn", ["dns:"])
    assert stats["dns.lookups"] == asked and stats["dns.cache_hits"] == n - asked, stats
    assert stats["dns.cache_entries"] == asked and stats["dns.pending_lookups"] == 0, stats
    assert stats["dns.failed_dns_request"] == 0 and stats["dns.slow_dns_request"] == 0, stats


def test_in_dialog_requests_to_a_contact_that_is_a_name(proxy, peers, nameserver):
    def callee_at_a_name(peer, m):
        if not m.is_request or m.method == "ACK":
            return
        text = reply(m, 200, "OK", peer, to_tag="callee")
        peer.send(text.replace(f"Contact: <{peer.uri}>", f"Contact: <sip:callee@host-a.test:{peer.port}>"),
                  m.src_port)

    callee = peers("callee", callee_at_a_name)
    ns = nameserver(["--host-record=host-a.test,127.0.0.1"])
    p = proxy("default.lua", core=dns_core(ns.server))
    caller = peers("caller")
    caller.send(request("INVITE", callee.uri, caller, call_id="dlg-name@test"), p.port)
    ok = caller.wait_for(is_response(200, "INVITE"), "200 for the INVITE")
    target = uri_of(ok.get("contact"))
    assert target == f"sip:callee@host-a.test:{callee.port}"
    routes = list(reversed(ok.all("record-route")))
    ack = request("ACK", target, caller, call_id=ok.call_id, to=ok.get("to"), routes=routes)

    # The ACK of a 2xx is forwarded without a transaction: the first copy
    # starts the lookup and is dropped, as a lost datagram; the copy the
    # caller sends for the retransmitted 2xx finds the answer cached.
    caller.send(ack, p.port)
    time.sleep(0.5)
    assert not [m for m in callee.received if is_request("ACK")(m)], "the first ACK went on"
    caller.send(ack, p.port)
    callee.wait_for(is_request("ACK"), "the ACK sent again")
    caller.send(request("BYE", target, caller, call_id=ok.call_id, to=ok.get("to"), routes=routes, cseq=2),
                p.port)
    bye = callee.wait_for(is_request("BYE"), "BYE at the Contact's address")
    assert bye.ruri == target
    caller.wait_for(is_response(200, "BYE"), "200 for the BYE")
    assert ns.queries("A", "host-a.test") == 1


def test_a_name_that_does_not_exist_gets_478(proxy, peers, nameserver):
    ns = nameserver([])
    p = proxy("default.lua", core=dns_core(ns.server))
    caller = peers("caller")
    caller.send(request("INVITE", "sip:carol@nosuch.test:5060", caller), p.port)
    final = caller.wait_for(is_final("INVITE"), "final response")
    assert (final.code, final.reason) == (478, "Unresolvable destination"), final.raw
    assert ns.queries("A", "nosuch.test") >= 1


@pytest.fixture
def dead_nameserver():
    """A UDP socket on 127.0.0.1 that reads queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    yield sock
    sock.close()


def _queries_seen(sock: socket.socket) -> int:
    n = 0
    try:
        while True:
            sock.recvfrom(2048)
            n += 1
    except (socket.timeout, BlockingIOError):
        return n


def test_a_dead_name_server_ends_in_478_and_blocks_nothing(proxy, peers, dead_nameserver):
    callee = peers("callee", lambda peer, m: peer.answer(m, 200, "OK") if m.is_request else None)
    server = f"127.0.0.1:{dead_nameserver.getsockname()[1]}"
    rpc_port = conftest.free_port()
    p = proxy("default.lua", core=dns_core(server, dns_retr_time=1, dns_retr_no=1,
                                           rpc_listen=f"http:127.0.0.1:{rpc_port}"),
              modparams={("tm", "fr_timer"): 10000, ("tm", "fr_inv_timer"): 10000})
    caller = peers("caller")
    t0 = time.monotonic()
    caller.send(request("INVITE", "sip:dave@silent.test:5060", caller, call_id="dead@test"), p.port)
    caller.wait_for(is_response(100, "INVITE"), "100 Trying while the name is looked up")
    # the worker waiting for DNS still serves the other calls at once
    for i in range(3):
        caller.send(request("OPTIONS", callee.uri, caller, call_id=f"meanwhile-{i}@test"), p.port)
        caller.wait_for(lambda m, i=i: is_response(200, "OPTIONS")(m) and m.call_id == f"meanwhile-{i}@test",
                        f"200 of OPTIONS {i}", timeout=0.8)
    final = caller.wait_for(is_final("INVITE"), "final response", timeout=8)
    assert (final.code, final.reason) == (478, "Unresolvable destination"), final.raw
    assert time.monotonic() - t0 < 8, "the lookup's timeout (1 s, 1 try) ended it, not fr_timer (10 s)"
    assert _queries_seen(dead_nameserver) >= 1, "nothing asked the name server"
    # a second: slow (dns_slow_query_ms 800, Kamailio's default) and failed
    stats = rpc(rpc_port, "stats.fetchn", ["dns:"])
    assert stats["dns.slow_dns_request"] == 1 and stats["dns.failed_dns_request"] == 1, stats


def test_cancel_while_the_name_is_looked_up(proxy, peers, dead_nameserver):
    server = f"127.0.0.1:{dead_nameserver.getsockname()[1]}"
    p = proxy("default.lua", core=dns_core(server, dns_retr_time=5, dns_retr_no=1),
              modparams={("tm", "fr_timer"): 10000, ("tm", "fr_inv_timer"): 10000})
    caller = peers("caller")
    invite = request("INVITE", "sip:erin@silent.test:5060", caller, call_id="cancel-dns@test")
    caller.send(invite, p.port)
    caller.wait_for(is_response(100, "INVITE"), "100 Trying")
    caller.send(cancel_for(invite), p.port)
    caller.wait_for(is_response(200, "CANCEL"), "200 for the CANCEL")
    final = caller.wait_for(is_final("INVITE"), "final response", timeout=2)
    assert final.code == 487, final.raw
    time.sleep(0.3)
    assert [m.code for m in caller.received if is_final("INVITE")(m)] == [487]


def test_dns_settings_are_checked(tmp_path):
    if not conftest.IMSDLGD.exists():
        pytest.skip("imsdlgd not built")
    lua = tmp_path / "default.lua"
    lua.write_text(conftest.render_lua("default.lua"))

    def check(core: dict) -> subprocess.CompletedProcess:
        cfg = tmp_path / "check.cfg"
        cfg.write_text(conftest.render_cfg("imsdlgd", 5060, 1, lua, core=core))
        return subprocess.run([str(conftest.IMSDLGD), "-c", "-f", str(cfg)], capture_output=True, text=True,
                              timeout=10)

    good = check({"dns_servers": "127.0.0.1:5353,[::1]:53", "dns_retr_time": 1, "dns_retr_no": 2,
                  "dns_cache_max_ttl": 600, "dns_cache_negative_ttl": 0})
    assert good.returncode == 0, good.stderr
    bad = check({"dns_servers": "127.0.0.1:notaport"})
    assert bad.returncode == 1, bad
    line = next(i for i, text in enumerate((tmp_path / "check.cfg").read_text().splitlines(), 1)
                if text.startswith("dns_servers"))
    assert f"check.cfg:{line}:" in bad.stderr and "notaport" in bad.stderr, bad.stderr
    zero = check({"dns_retr_time": 0})
    assert zero.returncode == 1 and "dns_retr_time" in zero.stderr, zero.stderr
