"""Dialog RPC methods (dlg.*, stats.* of the dialog group) over HTTP against
imsdlgd with ims_dialog loaded, while SIPp holds a confirmed call: the
listing against what went over the wire, the counters, the profile sizes,
and dlg.end_dlg / dlg.terminate_dlg ending the call with a BYE to both
sides (docs/rpc.md). imsdlgd only: rpc_listen is not Kamailio's."""
from __future__ import annotations

import http.client
import json
import re
import time

import pytest

import conftest
from sipwire import requests, responses

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="rpc_listen is imsdlgd's")

WAIT = 5.0


class Rpc:
    def __init__(self, proxy, port: int):
        self.proxy, self.port = proxy, port

    def call(self, method: str, params=None):
        """(HTTP status, result or None, error or None)."""
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        deadline = time.monotonic() + WAIT
        while True:
            conn = http.client.HTTPConnection(conftest.HOST, self.port, timeout=WAIT)
            try:
                conn.request("POST", "/RPC", body=json.dumps(req),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                reply = json.loads(resp.read())
                return resp.status, reply.get("result"), reply.get("error")
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                conn.close()

    def ok(self, method: str, params=None):
        status, result, error = self.call(method, params)
        assert status == 200 and error is None, (method, status, error)
        return result

    def fault(self, method: str, params, code: int, message: str | None = None):
        status, result, error = self.call(method, params)
        assert error is not None, (method, params, result)
        assert error["code"] == code, (method, params, error)
        if message is not None:
            assert error["message"] == message, (method, params, error)
        if 100 <= code <= 599:
            assert status == code, (method, status)


@pytest.fixture
def dlg_rpc_proxy(proxy, monkeypatch):
    """A proxy with ims_dialog, profile "caller" (with values, filled with
    $fU by dialog_profile.lua) and HTTP RPC on a free port."""
    http_port = conftest.free_port()
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2):
        text = orig(kind, port, children, lua, modparams, debug)
        text = text.replace('loadmodule "app_lua.so"',
                            'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')
        return text.replace(f"children={children}\n",
                            f"children={children}\n"
                            f"rpc_listen=http:{conftest.HOST}:{http_port}\n")

    monkeypatch.setattr(conftest, "render_cfg", render)

    def start() -> Rpc:
        p = proxy("dialog_profile.lua",
                  modparams={("ims_dialog", "profiles_with_value"): "caller",
                             ("ims_dialog", "default_timeout"): 120})
        return Rpc(p, http_port)

    return start


def hdr(msg, name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", msg.raw, re.M | re.I)
    return m.group(1).strip() if m else None


def tag_of(value: str) -> str:
    return re.search(r"tag=([^;>\s]+)", value).group(1)


def held_call(r: Rpc, sipp):
    """Starts a call that only the proxy can end; returns (uac, uas, dialog
    object) once dlg.list shows it confirmed and the UAS saw the ACK."""
    uas = sipp.uas("uas_call.xml", timeout=60)
    uac = sipp.uac("dlg_uac_wait_bye.xml", r.proxy, uas.port,
                   keys={"ruri": f"sip:service@127.0.0.1:{uas.port}"},
                   timeout=30, wait=False)
    deadline = time.monotonic() + 10
    while True:
        dlgs = r.ok("dlg.list")
        if (dlgs and dlgs[0]["state"] == 4
                and requests(uas.received(), "ACK")):
            return uac, uas, dlgs[0]
        assert time.monotonic() < deadline, f"no confirmed dialog: {dlgs}"
        time.sleep(0.1)


def wait_stat(r: Rpc, name: str, want: int) -> None:
    deadline = time.monotonic() + 5
    while r.ok("stats.fetchn", [name])[f"dialog.{name}"] != want:
        assert time.monotonic() < deadline, r.ok("stats.fetch", ["all"])
        time.sleep(0.1)


def check_ended(r: Rpc, uac, uas) -> None:
    assert uac.wait(30) == 0, uac.explain()
    assert uas.wait(30) == 0, uas.explain()
    assert len(requests(uac.received(), "BYE")) >= 1
    assert len(requests(uas.received(), "BYE")) >= 1
    wait_stat(r, "active_dialogs", 0)
    assert r.ok("dlg.stats_active")["ongoing"] == 0


def test_list_stats_profiles_end_dlg(dlg_rpc_proxy, sipp):
    r = dlg_rpc_proxy()
    methods = r.ok("system.listMethods")
    for m in ("dlg.list", "dlg.dlg_list", "dlg.end_dlg", "dlg.terminate_dlg",
              "dlg.is_alive", "dlg.profile_get_size", "dlg.stats_active",
              "stats.get_statistics", "stats.fetch", "stats.fetchn"):
        assert m in methods
    assert r.ok("dlg.list") == []

    uac, uas, d = held_call(r, sipp)
    inv = requests(uas.received(), "INVITE")[0]
    ok = responses(uac.received(), 200, "INVITE")[0]
    caller_tag, callee_tag = tag_of(hdr(inv, "From")), tag_of(hdr(ok, "To"))
    callid = hdr(inv, "Call-ID")

    assert d["call-id"] == callid
    assert d["state"] == 4 and d["state_name"] == "Confirmed"
    assert d["caller"]["tag"] == caller_tag
    assert d["callee"]["tag"] == callee_tag
    assert d["from_uri"].startswith("sip:sipp@")
    assert d["to_uri"] == f"sip:service@127.0.0.1:{uas.port}"
    assert d["caller"]["cseq"] == 1 and d["lifetime"] == 120
    assert d["caller"]["socket"] == f"udp:{conftest.HOST}:{r.proxy.port}"
    assert "sipp@" in d["caller"]["contact"]
    assert str(uas.port) in d["callee"]["contact"]
    now = time.time()
    assert d["init_ts"] <= d["start_ts"] <= now + 1 and d["end_ts"] == 0
    assert now + 100 < d["timeout"] <= now + 125, d
    assert 0 <= d["duration"] <= 10
    assert d["profiles"] == [{"caller": "sipp"}] and d["variables"] == []
    assert [(l["tag"], l["state"]) for l in d["legs"]] == [(callee_tag, "confirmed")]
    for k in ("h_entry", "h_id", "dflags", "sflags", "iflags"):
        assert isinstance(d[k], int)

    # paging and the per-call listing
    assert r.ok("dlg.list", [1]) == [] and r.ok("dlg.list", [0, 0]) == []
    assert [x["h_id"] for x in r.ok("dlg.list", {"offset": 0, "limit": 5})] \
        == [d["h_id"]]
    assert [x["h_id"] for x in r.ok("dlg.dlg_list", [callid])] == [d["h_id"]]
    assert len(r.ok("dlg.dlg_list", [callid, caller_tag])) == 1
    assert r.ok("dlg.dlg_list", [callid, "other"]) == []

    assert r.ok("dlg.stats_active") == {"starting": 0, "connecting": 0,
                                        "answering": 0, "ongoing": 1, "all": 1}
    assert r.ok("stats.fetch", ["active_dialogs"]) == {"dialog.active_dialogs": "1"}
    fetched = r.ok("stats.fetch", ["dialog:"])
    assert fetched["dialog.processed_dialogs"] == "1" and len(fetched) == 5
    assert r.ok("stats.fetchn", ["all"])["dialog.early_dialogs"] == 0
    lines = r.ok("stats.get_statistics", ["active_dialogs", "dialog:failed_dialogs"])
    assert lines == ["dialog:active_dialogs = 1", "dialog:failed_dialogs = 0"]

    assert r.ok("dlg.profile_get_size", ["caller"]) == 1
    assert r.ok("dlg.profile_get_size", ["caller", "sipp"]) == 1
    assert r.ok("dlg.profile_get_size", {"profile": "caller", "value": "x"}) == 0
    assert r.ok("dlg.is_alive", [callid, caller_tag, callee_tag]) == "Alive"
    # the tags in the callee's orientation name the same dialog
    assert r.ok("dlg.is_alive", [callid, callee_tag, caller_tag]) == "Alive"

    r.fault("dlg.end_dlg", [d["h_entry"], d["h_id"] + 1000], 404, "Dialog not found")
    r.fault("dlg.end_dlg", [d["h_entry"], d["h_id"], "no colon here"], 400,
            "Invalid extra headers")
    r.fault("dlg.end_dlg", [d["h_entry"], d["h_id"], "X-A: 1\rX-B: 2"], 400)
    assert r.ok("dlg.end_dlg", [d["h_entry"], d["h_id"],
                                "X-Op: rpc test\n\r\nX-Ticket: 42"]) == {}
    check_ended(r, uac, uas)
    for bye in (requests(uas.received(), "BYE")[0], requests(uac.received(), "BYE")[0]):
        assert hdr(bye, "Reason") == 'SIP;cause=200;text="mi_terminated"'
        assert hdr(bye, "X-Op") == "rpc test" and hdr(bye, "X-Ticket") == "42"
    assert r.ok("dlg.profile_get_size", ["caller"]) == 0
    r.fault("dlg.end_dlg", [d["h_entry"], d["h_id"]], 404, "Dialog not found")
    r.fault("dlg.is_alive", [callid, caller_tag, callee_tag], 404)


def test_terminate_dlg_by_tags(dlg_rpc_proxy, sipp):
    r = dlg_rpc_proxy()
    uac, uas, d = held_call(r, sipp)
    callid, ftag, ttag = d["call-id"], d["caller"]["tag"], d["callee"]["tag"]
    r.fault("dlg.terminate_dlg", [callid, ftag, "nope"], 404, "Dialog not found")
    assert r.ok("dlg.terminate_dlg", {"callid": callid, "from_tag": ftag,
                                      "to_tag": ttag, "reason": "operator"}) == {}
    check_ended(r, uac, uas)
    bye = requests(uas.received(), "BYE")[0]
    assert hdr(bye, "Reason") == 'SIP;cause=200;text="operator"'
    assert hdr(bye, "X-Op") is None


def test_errors(dlg_rpc_proxy):
    r = dlg_rpc_proxy()
    r.fault("dlg.end_dlg", [], 400)
    r.fault("dlg.end_dlg", [1], 400)
    r.fault("dlg.end_dlg", ["x", 1], -32602)
    r.fault("dlg.end_dlg", [1, 2], 404, "Dialog not found")
    r.fault("dlg.terminate_dlg", ["cid", "a"], 400)
    r.fault("dlg.terminate_dlg", ["cid", "a", "b"], 404, "Dialog not found")
    r.fault("dlg.is_alive", ["cid", "a", "b"], 404, "Dialog not found")
    r.fault("dlg.is_alive", ["cid"], 400)
    r.fault("dlg.dlg_list", [], 400)
    assert r.ok("dlg.dlg_list", ["no-such-call"]) == []
    r.fault("dlg.list", [-1], 400)
    r.fault("dlg.list", ["x"], -32602)
    r.fault("dlg.profile_get_size", [], 400)
    r.fault("dlg.profile_get_size", ["nope"], 404, "Profile not found: nope")
    r.fault("stats.fetch", [], 400)
    r.fault("stats.fetch", ["nope"], 404)
    r.fault("stats.get_statistics", ["core:"], 404)
    assert r.ok("stats.fetchn", ["all"]) == {
        f"dialog.{n}_dialogs": 0
        for n in ("active", "early", "processed", "expired", "failed")}
    assert r.ok("stats.fetchn", {"statistics": "dialog:"}) == r.ok("stats.fetchn", ["all"])
    assert r.ok("dlg.list") == []
    assert r.ok("dlg.stats_active")["all"] == 0
