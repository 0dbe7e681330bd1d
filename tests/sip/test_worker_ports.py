"""Worker ports (imsdlgd only): `listen=udp:HOST:PORT worker_ports BASE`.

Each worker gets a UDP port of its own; what it relays goes out from that
port, with that port in Via and Record-Route, so that replies and in-dialog
requests come back to the worker owning the call. The caller here is the
benchmark's UAC (bench/lib/scenarios/uac.xml): it sends the INVITE to the
proxy's shared port and, like a real UA, its ACK and BYE to the address of
the first Route (the Record-Route of the 200), i.e. to a worker port. A call
completes only if the proxy reads that port and relays from it.
"""

from __future__ import annotations

import subprocess

import pytest

import conftest
from sipwire import distinct, requests, uri_hostport, uri_of, via_sent_by

BENCH_SCENARIOS = conftest.REPO / "bench" / "lib" / "scenarios"
CALLS = 20


@pytest.fixture(autouse=True)
def _imsdlgd_only(proxy_kind):
    if proxy_kind != "imsdlgd":
        pytest.skip("worker ports are an imsdlgd feature")


@pytest.mark.parametrize("base", ["0", "fixed"])
def test_calls_come_back_to_their_worker_port(proxy, sipp, children, base):
    if base == "fixed":
        # consecutive free ports: worker i listens on base + i
        base = next(b for b in (conftest.free_port() for _ in range(50))
                    if all(conftest._port_free(b + i) for i in range(children)))
    p = proxy("default.lua", udp_options=f"worker_ports {base}")
    uas = sipp.uas(str(BENCH_SCENARIOS / "uas.xml"), calls=CALLS)
    uac = sipp.uac(str(BENCH_SCENARIOS / "uac.xml"), p, None, calls=CALLS, rate=20,
                   keys={"uas": f"{conftest.HOST}:{uas.port}"}, extra=["-d", "100"])
    assert uac.rc == 0 and uac.successful_calls() == CALLS, uac.explain()
    assert uas.wait(10) == 0, uas.explain()

    received = uas.received()
    ports = set()
    for inv in distinct(requests(received, "INVITE")):
        host, port = via_sent_by(inv.vias[0])
        rr = [uri_hostport(uri_of(r)) for r in inv.all("record-route")]
        assert host == conftest.HOST and port != p.port, f"relayed from the shared port: {inv.vias[0]}"
        assert rr == [(conftest.HOST, port)], f"Record-Route must name the Via's worker port {port}: {rr}"
        if base != "0":
            assert int(base) <= port < int(base) + children, f"port {port} outside worker_ports {base}"
        # the ACK and the BYE of this call came in on that port and went out from it
        for method in ("ACK", "BYE"):
            req = [m for m in distinct(requests(received, method)) if m.call_id == inv.call_id]
            assert len(req) == 1, f"{method} of {inv.call_id}: {req}"
            assert via_sent_by(req[0].vias[0]) == (host, port), f"{method} relayed from elsewhere: {req[0].vias}"
        ports.add(port)
    # Call-IDs spread over the workers: with 20 calls, both are all but sure to be used
    assert len(ports) == children, f"{children} worker ports expected in use, saw {sorted(ports)}"


def check_start(tmp_path, listen: str, check_only: bool) -> subprocess.CompletedProcess:
    """imsdlgd on a config whose line 3 is `listen=<listen>`."""
    ok, why = conftest.proxy_available()
    if not ok:
        pytest.skip(why)
    lua = tmp_path / "empty.lua"
    lua.write_text("function ksr_request_route() end\n")
    cfg = tmp_path / "wp.cfg"
    cfg.write_text(f"#!KAMAILIO\nchildren=2\nlisten={listen}\nloadmodule \"app_lua\"\n"
                   f"modparam(\"app_lua\", \"load\", \"{lua}\")\ncfgengine \"lua\"\n")
    return subprocess.run([str(conftest.IMSDLGD), *(["-c"] if check_only else []), "-f", str(cfg)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("spec, reason", [
    ("tcp:127.0.0.1:{port} worker_ports 0", "worker_ports is for UDP listeners only"),
    ("udp:127.0.0.1:{port} worker_ports x", "worker_ports needs a port number"),
    ("udp:127.0.0.1:{port} worker_ports", "missing port after 'worker_ports'"),
    ("udp:127.0.0.1:{port} worker_ports 6000 worker_ports 7000", "'worker_ports' given twice"),
])
def test_worker_ports_config_errors(tmp_path, spec, reason):
    r = check_start(tmp_path, spec.format(port=conftest.free_port()), check_only=True)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert "wp.cfg:3:" in r.stderr and reason in r.stderr, r.stderr


def test_worker_ports_past_65535(tmp_path):
    r = check_start(tmp_path, f"udp:127.0.0.1:{conftest.free_port()} worker_ports 65535", check_only=False)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert "worker_ports 65535: 2 workers need ports up to 65536" in r.stderr, r.stderr
