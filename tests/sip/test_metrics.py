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
          "tmx.inuse_transactions", "tmx.active_transactions"}


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
    """metrics_proxy(extra=[...], modparams={...}, prefix="imsdlg_") -> Node
    of a proxy running metrics.lua with ims_dialog, three profiles on
    /metrics and HTTP RPC on a free port."""

    def start(extra: list[str] | None = None, modparams: dict | None = None,
              prefix: str = "imsdlg_") -> Node:
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
        p = proxy("metrics.lua", modparams={**PROFILE_MODPARAMS, **(modparams or {})})
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
    for k in ("drop_requests", "drop_replies", "err_requests", "err_replies", "bad_msg_hdr"):
        want[f"core.{k}"] = 0
    assert {k: delta[k] for k in want} == want
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


@pytest.mark.parametrize("line,why", [
    ('modparam("ims_dialog", "metrics_profiles", "caller;nope")',
     'ims_dialog metrics_profiles: no profile "nope"'),
    ('metrics_prefix="bad-prefix"', "letters, digits and '_' only"),
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
    cfg.write_text(text + line + "\n")
    lineno = len(text.splitlines()) + 1
    r = subprocess.run([str(conftest.IMSDLGD), "-c", "-f", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr}"
    assert f"{cfg}:{lineno}:" in r.stderr and why in r.stderr, r.stderr
