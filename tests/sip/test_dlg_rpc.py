"""Dialog RPC methods (dlg.*, dlg2.*, mem.info, stats.* of the dialog group)
over HTTP against imsdlgd with ims_dialog loaded, while SIPp holds calls in
every state: each listing checked field by field against what went over
the wire and what the script did (variables, profiles), the matching and
paging rules, the methods that end calls or re-arm their timer checked on
the wire (BYEs, CANCELs, final replies), the faults of bad parameters, and
a table of 3,000 held calls listed in one reply while the workers keep
answering (docs/rpc.md). imsdlgd only: rpc_listen is not Kamailio's."""
from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time

import pytest

import conftest
from sipwire import Msg, distinct, requests, responses

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="rpc_listen is imsdlgd's")

WAIT = conftest.RPC_WAIT


class Rpc:
    def __init__(self, proxy, port: int):
        self.proxy, self.port = proxy, port

    def call(self, method: str, params=None):
        """(HTTP status, result or None, error or None)."""
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        status, _, data = conftest.http_request(self.port, "POST", "/RPC", json.dumps(req),
                                                {"Content-Type": "application/json"})
        reply = json.loads(data)
        return status, reply.get("result"), reply.get("error")

    def raw(self, method: str, params=None) -> bytes:
        """The reply body, unparsed (parsing a large one holds Python's
        lock, which would delay the prober thread)."""
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        conn = http.client.HTTPConnection(conftest.HOST, self.port, timeout=60)
        try:
            conn.request("POST", "/RPC", body=json.dumps(req))
            resp = conn.getresponse()
            assert resp.status == 200, resp.status
            return resp.read()
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
    """start(lua, subst, modparams) -> Rpc: a proxy with ims_dialog and HTTP
    RPC on a free port. By default dialog_profile.lua, profile "caller"
    (with values, filled with $fU) and default_timeout 120."""
    http_port = conftest.free_port()
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2, **kw):
        text = orig(kind, port, children, lua, modparams, debug, **kw)
        text = text.replace('loadmodule "app_lua.so"',
                            'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')
        return text.replace(f"children={children}\n",
                            f"children={children}\n"
                            f"rpc_listen=http:{conftest.HOST}:{http_port}\n")

    monkeypatch.setattr(conftest, "render_cfg", render)

    def start(lua: str = "dialog_profile.lua", subst: dict | None = None,
              modparams: dict | None = None) -> Rpc:
        params = {("ims_dialog", "profiles_with_value"): "caller",
                  ("ims_dialog", "default_timeout"): 120}
        params.update(modparams or {})
        return Rpc(proxy(lua, subst=subst, modparams=params), http_port)

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
    assert fetched["dialog.processed_dialogs"] == "1" and len(fetched) == 6
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
    r.fault("stats.get_statistics", ["nosuchgroup:"], 404)
    dialog_group = {f"dialog.{n}_dialogs": 0
                    for n in ("active", "early", "processed", "expired", "failed", "refused")}
    assert r.ok("stats.fetchn", ["dialog:"]) == dialog_group
    # "all" holds the dialog group among the others (tm, core ...)
    assert dialog_group.items() <= r.ok("stats.fetchn", ["all"]).items()
    assert r.ok("stats.fetchn", {"statistics": "dialog:"}) == dialog_group
    assert r.ok("dlg.list") == []
    assert r.ok("dlg.stats_active")["all"] == 0


# --------------------------------------------------------------------------
# helpers of the tests below
# --------------------------------------------------------------------------
def revhex(v: int) -> str:
    return format(v, "x")[::-1]


def wait_for(what: str, fn, timeout: float = 10.0, every: float = 0.1, show=None):
    """fn() until it returns something true; that value. show() says what
    there is instead when it times out."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, \
            f"timed out waiting for {what}" + (f": {show()}" if show else "")
        time.sleep(every)


def by_callid(dlgs) -> dict:
    out = {d["call-id"]: d for d in dlgs}
    assert len(out) == len(dlgs), f"a Call-ID listed twice: {dlgs}"
    return out


def ids(dlgs) -> set:
    return {(d["h_entry"], d["h_id"]) for d in dlgs}


def strip_ctx(d: dict) -> dict:
    """A dialog object without its context and what moves with the clock
    (or with transactions) between two listings."""
    return {k: v for k, v in d.items() if k not in ("context", "duration", "ref", "timeout")}


def rpc_proxy(dlg_rpc_proxy, fork_port: int, tm: dict | None = None, **modparams):
    params = {("ims_dialog", "profiles_no_value"): "tracked"}
    params.update({("ims_dialog", k): v for k, v in modparams.items()})
    params.update({("tm", k): v for k, v in (tm or {}).items()})
    return dlg_rpc_proxy("dlg_rpc.lua", subst={"FORK_PORT": fork_port},
                         modparams=params)


def held(r: Rpc, sipp, user: str, name: str):
    """A confirmed call from `user` that only the proxy ends: (uac, uas,
    its dialog object), once it is listed confirmed and the ACK reached
    the callee."""
    uas = sipp.uas("uas_call.xml", name=f"{name}_uas", timeout=60)
    uac = sipp.uac("dlg_rpc_uac.xml", r.proxy, uas.port, name=f"{name}_uac",
                   keys={"ruri": f"sip:service@127.0.0.1:{uas.port}", "user": user},
                   timeout=60, wait=False)

    def confirmed():
        acks = requests(uas.received(), "ACK") if uas.msg_log.exists() else []
        mine = [d for d in r.ok("dlg.list") if d["from_uri"].startswith(f"sip:{user}@")
                and d["state"] == 4]
        return mine[0] if mine and acks else None

    return uac, uas, wait_for(f"{user}'s call confirmed", confirmed)


def bye_reason_and(msg: Msg, name: str):
    return hdr(msg, "Reason"), hdr(msg, name)


# --------------------------------------------------------------------------
# every listing, field by field, with calls in every state
# --------------------------------------------------------------------------
def test_listings_with_calls_in_every_state(dlg_rpc_proxy, sipp):
    """A confirmed call (alice), a call ringing on two forked branches
    (sipp, to user "fork") and a call that ended normally and lingers
    (state 5, end_timeout 8 s). Then dlg2.end_all_active_dlg ends the first
    two on the wire and mem.info falls back to nothing."""
    uas_b = sipp.uas("dlg_uas_ring_cancel.xml", name="fork_b", keys={"xhdr": "X-Branch: b"},
                     extra=["-d", "300"])
    # T1 100 ms: a completed BYE transaction lingers 64*T1 (timer J), and
    # the dialog record with it; this keeps the wait for mem.info short
    r = rpc_proxy(dlg_rpc_proxy, uas_b.port, tm={"retr_timer1": 100}, end_timeout=8)
    children = int(re.search(r"children=(\d)", r.proxy.cfg.read_text()).group(1))

    # nothing yet
    mem0 = r.ok("mem.info")
    assert mem0["dialogs"] == 0 and mem0["dialog_bytes"] == 0
    assert mem0["dialog_bytes_avg"] == 0 and mem0["transactions"] == 0
    assert [s["shard"] for s in mem0["shards"]] == list(range(children))
    assert all(s["running"] and s["dialogs"] == 0 for s in mem0["shards"])
    for m in ("dlg.list", "dlg.list_ctx", "dlg.briefing"):
        assert r.ok(m) == [], m
    assert r.ok("dlg2.list") == {"Dialogs": [], "Size": 4096}
    r.fault("dlg.list_match", ["callid", "re", "."], 404, "Not found")

    # 1. confirmed, held by the proxy
    a_uac, a_uas, _ = held(r, sipp, "alice", "a")
    # 2. early on two branches: A rings at once, B 0.3 s later
    uas_a = sipp.uas("dlg_uas_ring_cancel.xml", name="fork_a", keys={"xhdr": "X-Branch: a"})
    e_uac = sipp.uac("dlg_uac_early_fail.xml", r.proxy, uas_a.port, name="fork_uac",
                     keys={"ruri": f"sip:fork@127.0.0.1:{uas_a.port}"}, timeout=30, wait=False)

    def two_ringing():
        early = [d for d in r.ok("dlg.list") if d["state"] == 2]
        return early[0] if early and len(early[0]["legs"]) == 2 else None

    wait_for("two early legs", two_ringing)
    # 3. a call that ended normally: lingers in state 5
    x_uas = sipp.uas("uas_call.xml", name="x_uas")
    x_uac = sipp.uac("uac_call.xml", r.proxy, x_uas.port, name="x_uac",
                     keys={"ruri": f"sip:service@127.0.0.1:{x_uas.port}"})
    assert x_uac.rc == 0, x_uac.explain()
    assert x_uas.wait(10) == 0, x_uas.explain()
    wait_for("the ended call in state 5",
             lambda: any(d["state"] == 5 for d in r.ok("dlg.list")))
    t_listed = time.time()

    # what went over the wire
    a_inv = requests(a_uas.received(), "INVITE")[0]
    a_ok = responses(a_uac.received(), 200, "INVITE")[0]
    e_inv = requests(uas_a.received(), "INVITE")[0]
    tag_fa = tag_of(distinct(responses(uas_a.sent(), 180))[0].get("to"))
    tag_fb = tag_of(distinct(responses(uas_b.sent(), 180))[0].get("to"))
    x_inv = requests(x_uas.received(), "INVITE")[0]
    x_bye = requests(x_uas.received(), "BYE")[0]
    calls = {"a": a_inv.call_id, "e": e_inv.call_id, "x": x_inv.call_id}

    # ---- dlg.list: every dialog once, field by field
    listed = r.ok("dlg.list")
    d = by_callid(listed)
    assert set(d) == set(calls.values()) and len(listed) == 3
    # worker after worker: the owner of a dialog is h_id % workers
    owners = [y["h_id"] % children for y in listed]
    assert owners == sorted(owners)
    a, e, x = d[calls["a"]], d[calls["e"]], d[calls["x"]]
    socket_name = f"udp:{conftest.HOST}:{r.proxy.port}"
    for dl in (a, e, x):
        assert list(dl)[:17] == ["h_entry", "h_id", "ref", "call-id", "from_uri", "to_uri",
                                 "state", "state_name", "start_ts", "init_ts", "end_ts",
                                 "duration", "timeout", "lifetime", "dflags", "sflags",
                                 "iflags"]
        assert list(dl)[17:] == ["caller", "callee", "profiles", "variables", "legs"]
        assert dl["caller"]["socket"] == socket_name and dl["lifetime"] == 120
    # the confirmed call
    assert (a["state"], a["state_name"]) == (4, "Confirmed")
    assert a["from_uri"] == f"sip:alice@127.0.0.1:{a_uac.port}"
    assert a["to_uri"] == f"sip:service@127.0.0.1:{a_uas.port}"
    assert a["caller"]["tag"] == tag_of(a_inv.get("from"))
    assert a["callee"]["tag"] == tag_of(a_ok.get("to"))
    assert a["callee"]["contact"] == f"sip:127.0.0.1:{a_uas.port};transport=UDP"
    assert a["caller"]["contact"] == f"sip:alice@127.0.0.1:{a_uac.port};transport=UDP"
    assert a["caller"]["cseq"] == 1 and a["end_ts"] == 0
    assert a["init_ts"] <= a["start_ts"] <= t_listed
    assert t_listed + 100 < a["timeout"] <= t_listed + 125
    assert sorted(map(json.dumps, a["profiles"])) == sorted(
        map(json.dumps, [{"caller": "alice"}, "tracked"]))
    # set from the reply route, for the 180 and then the 200
    assert a["variables"] == [{"caller": "alice"}, {"last_reply": "200"}]
    assert [(l["tag"], l["state"]) for l in a["legs"]] == [(a["callee"]["tag"], "confirmed")]
    # the early call: two early legs, the callee is the first
    assert (e["state"], e["state_name"]) == (2, "Early")
    assert e["to_uri"] == f"sip:fork@127.0.0.1:{uas_a.port}"
    assert e["start_ts"] == 0 and e["duration"] == 0 and e["end_ts"] == 0
    assert t_listed + 250 < e["timeout"] <= t_listed + 305  # early_timeout 300
    assert sorted(l["tag"] for l in e["legs"]) == sorted([tag_fa, tag_fb])
    assert all(l["state"] == "early" for l in e["legs"])
    assert {l["contact"] for l in e["legs"]} == {
        f"sip:127.0.0.1:{uas_a.port};transport=UDP", f"sip:127.0.0.1:{uas_b.port};transport=UDP"}
    assert e["callee"]["tag"] == e["legs"][0]["tag"]
    assert e["variables"] == [{"caller": "sipp"}, {"last_reply": "180"}]
    assert sorted(map(json.dumps, e["profiles"])) == sorted(
        map(json.dumps, [{"caller": "sipp"}, "tracked"]))
    # the ended call: no profiles, no variables, no timer; duration fixed
    assert (x["state"], x["state_name"]) == (5, "Deleted")
    assert x["profiles"] == [] and x["variables"] == [] and x["timeout"] == 0
    assert x["start_ts"] <= x["end_ts"] <= t_listed and x["duration"] == x["end_ts"] - x["start_ts"]
    assert x["callee"]["tag"] == tag_of(x_bye.get("to"))
    assert x["legs"][0]["state"] in ("confirmed", "ended")

    # paging keeps the order of the full listing
    assert [r.ok("dlg.list", [i, 1])[0]["call-id"] for i in range(3)] == \
        [y["call-id"] for y in listed]
    assert r.ok("dlg.list", {"offset": 1})[0]["call-id"] == listed[1]["call-id"]
    assert r.ok("dlg.list", [3]) == [] and r.ok("dlg.list", [0, 0]) == []

    # ---- *_ctx: the same objects, plus "context" (no C callback here)
    ctx = r.ok("dlg.list_ctx")
    assert [y["context"] for y in ctx] == [{}, {}, {}]
    assert [strip_ctx(y) for y in ctx] == [strip_ctx(y) for y in r.ok("dlg.list")]
    one_ctx = r.ok("dlg.dlg_list_ctx", [calls["a"]])
    assert len(one_ctx) == 1 and one_ctx[0]["context"] == {}
    assert strip_ctx(one_ctx[0]) == strip_ctx(r.ok("dlg.dlg_list", [calls["a"]])[0])
    assert "context" not in r.ok("dlg.dlg_list", [calls["a"]])[0]

    # ---- dlg.list_match: each key and operator finds exactly its dialogs
    def match(*params):
        return {y["call-id"] for y in r.ok("dlg.list_match", list(params))}

    ca, ce, cx = calls["a"], calls["e"], calls["x"]
    assert match("ruri", "eq", f"sip:service@127.0.0.1:{a_uas.port}") == {ca}
    assert match("ruri", "sw", "sip:fork@") == {ce}
    assert match("ruri", "re", "^SIP:SERVICE@") == {ca, cx}  # case-insensitive
    assert match("furi", "sw", "sip:alice@") == {ca}
    assert match("furi", "eq", x["from_uri"]) == {cx}
    assert match("furi", "re", "^sip:(sipp|alice)@127\\.0\\.0\\.1:[0-9]+$") == {ca, ce, cx}
    assert match("turi", "eq", e["to_uri"]) == {ce}
    assert match("turi", "re", "fork") == {ce}
    assert match("callid", "eq", ca) == {ca}
    assert match("callid", "sw", cx[:-1]) == {cx}
    assert match("start_ts", "lt", "1") == {ce}
    assert match("start_ts", "gt", "0") == {ca, cx}
    assert match("start_ts", "gt", str(a["start_ts"] - 1)) >= {ca}
    r.fault("dlg.list_match", ["start_ts", "gt", str(int(t_listed) + 10)], 404, "Not found")
    # state and init_ts: imsdlg's keys
    states = {y["call-id"]: y["state"] for y in listed}
    for st in set(states.values()):
        assert match("state", "eq", str(st)) == {c for c, v in states.items() if v == st}, states
    assert match("state", "lt", "5") == {c for c, v in states.items() if v < 5}, states
    assert match("init_ts", "gt", "0") == {ca, ce, cx}
    assert match("init_ts", "lt", str(int(t_listed) + 1)) == {ca, ce, cx}
    r.fault("dlg.list_match", ["init_ts", "gt", str(int(t_listed) + 10)], 404, "Not found")
    assert len(r.ok("dlg.list_match", ["callid", "re", ".", 2])) == 2
    assert len(r.ok("dlg.list_match", {"key": "callid", "op": "re", "value": ".",
                                       "limit": 0})) == 3
    r.fault("dlg.list_match", ["ruri", "eq", "sip:nobody@example.com"], 404, "Not found")
    lm_ctx = r.ok("dlg.list_match_ctx", ["callid", "eq", ca])
    assert len(lm_ctx) == 1 and lm_ctx[0]["context"] == {}

    # ---- dlg.profile_list agrees with the script's profile view
    def plist(*params):
        return {y["call-id"] for y in r.ok("dlg.profile_list", list(params))}

    assert plist("caller") == {ca, ce}
    assert plist("caller", "alice") == {ca} and plist("caller", "sipp") == {ce}
    assert plist("caller", "nobody") == set()
    assert plist("tracked") == {ca, ce} and plist("tracked", "ignored") == {ca, ce}
    for p, v in (("caller", None), ("caller", "alice"), ("caller", "sipp"), ("tracked", None)):
        params = [p] if v is None else [p, v]
        assert r.ok("dlg.profile_get_size", params) == len(plist(*params)), params
    full = r.ok("dlg.profile_list", ["caller", "alice"])[0]
    assert strip_ctx(full) == strip_ctx(d[ca])
    r.fault("dlg.profile_list", ["nope"], 404, "Profile not found: nope")

    # ---- dlg.briefing: default "ftcFT", and every letter
    brief = r.ok("dlg.briefing")
    assert [(y["h_entry"], y["h_id"]) for y in brief] == [(y["h_entry"], y["h_id"]) for y in listed]
    b = {y["call-id"]: y for y in brief}[ca]
    assert b == {"h_entry": a["h_entry"], "h_id": a["h_id"], "from_uri": a["from_uri"],
                 "to_uri": a["to_uri"], "call-id": ca, "from_tag": a["caller"]["tag"],
                 "to_tag": a["callee"]["tag"]}
    assert list(b) == ["h_entry", "h_id", "from_uri", "to_uri", "call-id", "from_tag", "to_tag"]
    b = {(y["h_entry"], y["h_id"]): y
         for y in r.ok("dlg.briefing", ["sEISxs?"])}[(x["h_entry"], x["h_id"])]
    assert list(b) == ["h_entry", "h_id", "state", "end_ts", "init_ts", "start_ts"]
    assert (b["state"], b["end_ts"], b["init_ts"], b["start_ts"]) == (
        5, x["end_ts"], x["init_ts"], x["start_ts"])
    assert r.ok("dlg.briefing", [""]) == [{"h_entry": y["h_entry"], "h_id": y["h_id"]}
                                          for y in listed]

    # ---- dlg2.list: ims_dialog's shape, then everything dlg.list gives
    ims = r.ok("dlg2.list")
    assert ims["Size"] == 4096 and len(ims["Dialogs"]) == 3
    i = {y["Dialog"]["Call-ID"]: y["Dialog"] for y in ims["Dialogs"]}
    ia, ie, ix = i[ca], i[ce], i[cx]
    assert list(ia)[:12] == ["Entry", "Id", "RURI", "From", "Call-ID", "Caller Contact",
                             "Caller Route Set", "Dialog-ID", "From Tag", "State", "Ref",
                             "dlg_outs"]
    assert (ia["Entry"], ia["Id"], ia["RURI"], ia["From"]) == (
        a["h_entry"], a["h_id"], f"sip:service@127.0.0.1:{a_uas.port}", a["from_uri"])
    assert ia["Dialog-ID"] == f"{revhex(a['h_entry'])}.{revhex(a['h_id'])}"
    assert ia["From Tag"] == a["caller"]["tag"] and ia["Caller Contact"] == a["caller"]["contact"]
    assert (ia["State"], ie["State"], ix["State"]) == ("Confirmed", "Early", "Deleted")
    assert ia["dlg_outs"] == [{"dlg_out": {
        "Entry": a["h_entry"], "Id": 0, "To Tag": a["callee"]["tag"],
        "Callee Contact": a["callee"]["contact"], "Callee Route Set": "", "Caller CSeq": 1,
        "Callee CSeq": 0, "Callee Socket": socket_name, "State": "confirmed"}}]
    assert sorted(o["dlg_out"]["To Tag"] for o in ie["dlg_outs"]) == sorted([tag_fa, tag_fb])
    assert strip_ctx({k: v for k, v in ia.items() if k in a}) == strip_ctx(d[ca])

    # ---- counts and memory
    assert r.ok("dlg.stats_active") == {"starting": 0, "connecting": 1, "answering": 0,
                                        "ongoing": 1, "all": 2}
    mem = r.ok("mem.info")
    assert mem["dialogs"] == 3 and sum(s["dialogs"] for s in mem["shards"]) == 3
    assert sum(s["dialog_bytes"] for s in mem["shards"]) == mem["dialog_bytes"]
    assert mem["dialog_bytes_avg"] == mem["dialog_bytes"] // 3
    assert 300 < mem["dialog_bytes_avg"] < 8000, mem
    assert mem["profile_bytes"] > 0 and mem["transaction_bytes"] >= 0
    assert sum(s["transactions"] for s in mem["shards"]) == mem["transactions"]
    # calls have ended: their transactions' blocks wait in the caches
    assert sum(s["cached_bytes"] for s in mem["shards"]) == mem["cached_bytes"]
    assert 0 < mem["cached_bytes"] <= children << 20, mem
    assert list(mem) == ["dialogs", "dialog_bytes", "dialog_bytes_avg", "profile_bytes",
                         "transactions", "transaction_bytes", "cached_bytes", "shards"]
    assert list(mem["shards"][0]) == ["shard", "running", "dialogs", "dialog_bytes",
                                      "transactions", "transaction_bytes", "cached_bytes",
                                      "queue"]

    # ---- dlg2.end_all_active_dlg: BYEs for the confirmed call, 488 up and
    # CANCELs down for the ringing one; the ended one is left alone
    assert r.ok("dlg2.end_all_active_dlg") == {"terminated": 2}
    for run in (a_uac, a_uas, e_uac, uas_a, uas_b):
        assert run.wait(30) == 0, run.explain()
    for bye in (requests(a_uac.received(), "BYE")[0], requests(a_uas.received(), "BYE")[0]):
        assert hdr(bye, "Reason") == 'SIP;cause=200;text="mi_terminated"'
    finals = [m for m in distinct(e_uac.received()) if not m.is_request and m.code >= 200]
    assert [(m.code, m.reason) for m in finals] == [(488, "mi_terminated")]
    for uas in (uas_a, uas_b):
        inv = requests(uas.received(), "INVITE")[0]
        cancel = requests(uas.received(), "CANCEL")[0]
        assert cancel.top_branch == inv.top_branch
        assert not requests(uas.received(), "BYE")
    assert r.ok("dlg2.end_all_active_dlg") == {"terminated": 0}
    wait_for("no live dialog", lambda: r.ok("dlg.stats_active")["all"] == 0)
    # the records linger end_timeout, then every byte is given back
    assert all(y["state"] == 5 for y in r.ok("dlg.list"))
    mem = wait_for("mem.info back to nothing",
                   lambda: (m := r.ok("mem.info"))["dialogs"] == 0 and m, timeout=20, every=0.5,
                   show=lambda: r.ok("dlg.list"))
    assert mem["dialog_bytes"] == 0 and mem["dialog_bytes_avg"] == 0
    assert r.ok("dlg.list") == [] and r.ok("dlg2.list")["Dialogs"] == []
    assert r.ok("dlg.profile_list", ["caller"]) == []


# --------------------------------------------------------------------------
# dlg.set_timeout and dlg2.end_dlg on the wire
# --------------------------------------------------------------------------
def test_set_timeout_shortens_a_call(dlg_rpc_proxy, sipp):
    r = rpc_proxy(dlg_rpc_proxy, 9)
    uac, uas, d = held(r, sipp, "bob", "b")
    assert d["lifetime"] == 120
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"], 0], 400,
            "seconds must be between 1 and 1073741824")
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"], -5], 400)
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"], 1 << 31], 400)
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"], "soon"], -32602)
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"]], 400)
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"] + 1000, 5], 404, "Dialog not found")
    assert r.ok("dlg.list")[0]["lifetime"] == 120  # the faults changed nothing

    t0 = time.time()
    assert r.ok("dlg.set_timeout", {"h_entry": d["h_entry"], "h_id": d["h_id"],
                                    "seconds": 2}) == {}
    now = r.ok("dlg.list")[0]
    assert now["lifetime"] == 2 and t0 + 1 <= now["timeout"] <= t0 + 4, now
    assert uac.wait(30) == 0, uac.explain()
    assert uas.wait(30) == 0, uas.explain()
    took = time.time() - t0
    assert 1.5 < took < 8, f"the call ended {took:.1f} s after dlg.set_timeout 2"
    for bye in (requests(uac.received(), "BYE")[0], requests(uas.received(), "BYE")[0]):
        assert hdr(bye, "Reason") == 'SIP;cause=200;text="dialog_timeout"'
    wait_stat(r, "active_dialogs", 0)
    assert r.ok("stats.fetchn", ["expired_dialogs"]) == {"dialog.expired_dialogs": 1}
    r.fault("dlg.set_timeout", [d["h_entry"], d["h_id"], 5], 404, "Dialog not found")


def test_dlg2_end_dlg(dlg_rpc_proxy, sipp):
    r = rpc_proxy(dlg_rpc_proxy, 9)
    uac, uas, d = held(r, sipp, "carol", "c")
    r.fault("dlg2.end_dlg", [d["h_entry"]], 400)
    r.fault("dlg2.end_dlg", [d["h_entry"], d["h_id"] + 1000], 404, "Dialog not found")
    r.fault("dlg2.end_dlg", [d["h_entry"], d["h_id"], "broken"], 400, "Invalid extra headers")
    assert r.ok("dlg2.end_dlg", [d["h_entry"], d["h_id"], "X-Ticket: 7"]) == {}
    assert uac.wait(30) == 0, uac.explain()
    assert uas.wait(30) == 0, uas.explain()
    for bye in (requests(uac.received(), "BYE")[0], requests(uas.received(), "BYE")[0]):
        assert bye_reason_and(bye, "X-Ticket") == ('SIP;cause=200;text="mi_terminated"', "7")
    wait_stat(r, "active_dialogs", 0)
    r.fault("dlg2.end_dlg", [d["h_entry"], d["h_id"]], 404, "Dialog not found")


# --------------------------------------------------------------------------
# 3,000 held calls in one listing, while the workers keep answering
# --------------------------------------------------------------------------
MANY = 3000


class Prober(threading.Thread):
    """Sends an OPTIONS every 10 ms (a new Call-ID each, so every worker
    gets some) and records how long each answer took."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.rtts, self.lost = port, [], 0
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((conftest.HOST, 0))
        self.sock.settimeout(2.0)

    def run(self):
        me = self.sock.getsockname()[1]
        n = 0
        while not self.stop.is_set():
            n += 1
            msg = (f"OPTIONS sip:probe@127.0.0.1:{self.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-probe-{n}\r\n"
                   f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\nTo: <sip:probe@127.0.0.1>\r\n"
                   f"Call-ID: probe-{n}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
                   f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            t = time.monotonic()
            self.sock.sendto(msg.encode(), (conftest.HOST, self.port))
            try:
                while f"probe-{n}@".encode() not in self.sock.recv(65535):
                    pass
                self.rtts.append(time.monotonic() - t)
            except socket.timeout:
                self.lost += 1
            time.sleep(0.01)


def test_list_3000_dialogs_in_one_reply(dlg_rpc_proxy, sipp):
    r = rpc_proxy(dlg_rpc_proxy, 9)
    uas = sipp.uas("uas_call.xml", calls=MANY, timeout=180)
    uac = sipp.uac("dlg_rpc_uac.xml", r.proxy, uas.port, calls=MANY, rate=300,
                   keys={"ruri": f"sip:service@127.0.0.1:{uas.port}", "user": "load"},
                   extra=["-l", str(MANY + 100)], timeout=180, wait=False)
    wait_for("3000 confirmed calls",
             lambda: r.ok("dlg.stats_active")["ongoing"] == MANY, timeout=90, every=0.5)

    probe = Prober(r.proxy.port)
    probe.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    body = r.raw("dlg.list")
    took = time.monotonic() - t0
    time.sleep(0.3)
    probe.stop.set()
    probe.join(5)
    full = json.loads(body)["result"]

    assert len(full) == MANY
    assert len(ids(full)) == MANY, "a dialog listed twice"
    assert len(by_callid(full)) == MANY
    assert all(y["state"] == 4 and y["variables"] == [{"caller": "load"}, {"last_reply": "200"}]
               for y in full)
    # the workers kept answering while the reply was built
    assert probe.rtts and probe.lost == 0, (len(probe.rtts), probe.lost)
    worst = max(probe.rtts)
    print(f"\ndlg.list of {MANY}: {took:.2f} s; OPTIONS during it: {len(probe.rtts)}, "
          f"worst {worst * 1000:.1f} ms")
    assert worst < 0.5, f"a worker stalled {worst * 1000:.0f} ms during dlg.list"
    walk = re.findall(r"rpc dlg\.list: (\d+) dialogs in (\d+) jobs .* "
                      r"longest job ([0-9.]+) ms, ([0-9.]+) ms of CPU", r.proxy.log_text())
    assert walk and int(walk[-1][0]) == MANY, walk
    print(f"walk: {walk[-1][1]} jobs, longest {walk[-1][2]} ms ({walk[-1][3]} ms of CPU)")
    # a job stops after ~1 ms; its time may include being preempted on a
    # busy machine, its CPU not (sanitizers make it a few times slower)
    assert float(walk[-1][3]) < 20, walk[-1]

    # pages of 1,000 add up to the same table (nothing changes meanwhile)
    pages = []
    for off in range(0, MANY, 1000):
        pages += r.ok("dlg.list", [off, 1000])
    assert [(y["h_entry"], y["h_id"]) for y in pages] == [(y["h_entry"], y["h_id"]) for y in full]
    assert len(r.ok("dlg.briefing", ["c"])) == MANY
    assert len(r.ok("dlg.list_match", ["furi", "sw", "sip:load@", 10])) == 10
    assert len(r.ok("dlg.profile_list", ["caller", "load"])) == MANY
    assert r.ok("dlg.profile_get_size", ["caller", "load"]) == MANY
    mem = r.ok("mem.info")
    assert mem["dialogs"] == MANY and mem["dialog_bytes_avg"] > 300

    assert r.ok("dlg2.end_all_active_dlg") == {"terminated": MANY}
    assert uac.wait(120) == 0, uac.explain()
    assert uac.successful_calls() == MANY
    assert uas.wait(60) == 0, uas.explain()
    wait_for("no live dialog", lambda: r.ok("dlg.stats_active")["all"] == 0, timeout=30)


def test_new_methods_bad_params(dlg_rpc_proxy):
    r = rpc_proxy(dlg_rpc_proxy, 9)
    methods = r.ok("system.listMethods")
    for m in ("dlg.list_ctx", "dlg.dlg_list_ctx", "dlg.list_match", "dlg.list_match_ctx",
              "dlg.profile_list", "dlg.briefing", "dlg.set_timeout", "dlg2.list",
              "dlg2.end_dlg", "dlg2.end_all_active_dlg", "mem.info", "dlg.set_state",
              "dlg.dump_file", "dlg.bridge_dlg"):
        assert m in methods
        assert r.ok("system.methodHelp", [m]) not in ("", "undocumented"), m
    r.fault("dlg.list", [0, -1], 400)
    r.fault("dlg.list_ctx", ["x"], -32602)
    r.fault("dlg.dlg_list_ctx", [], 400)
    r.fault("dlg.list_match", [], 400)
    r.fault("dlg.list_match", ["callid", "eq"], 400)
    r.fault("dlg.list_match", ["nope", "eq", "x"], 400, "Invalid matching key parameter")
    r.fault("dlg.list_match", ["callid", "ne", "x"], 400, "Invalid matching operator parameter")
    r.fault("dlg.list_match", ["callid", "gt", "5"], 400,
            "Matching operator gt not supported with key callid")
    r.fault("dlg.list_match", ["start_ts", "eq", "5"], 400)
    r.fault("dlg.list_match", ["init_ts", "eq", "5"], 400)
    r.fault("dlg.list_match", ["state", "re", "2"], 400)
    r.fault("dlg.list_match", ["state", "eq", "two"], 400, "Invalid matching value parameter")
    r.fault("dlg.list_match", ["start_ts", "lt", "soon"], 400, "Invalid matching value parameter")
    r.fault("dlg.list_match", ["callid", "re", "(unclosed"], 400,
            "Invalid matching value parameter")
    r.fault("dlg.list_match", ["callid", "re", "[z-a]"], 400)
    r.fault("dlg.list_match", ["callid", "re", ".", -1], 400)
    r.fault("dlg.list_match", ["callid", "re", ".", "many"], -32602)
    r.fault("dlg.list_match_ctx", ["callid", "re", "."], 404, "Not found")
    r.fault("dlg.profile_list", [], 400)
    r.fault("dlg.profile_list", ["nope", "v"], 404, "Profile not found: nope")
    r.fault("dlg.profile_list", [{"a": 1}], -32602)
    assert r.ok("dlg.profile_list", ["caller"]) == []
    r.fault("dlg.briefing", [[1]], -32602)
    r.fault("dlg.set_timeout", [], 400)
    r.fault("dlg.set_timeout", [1, 2, 30], 404, "Dialog not found")
    r.fault("dlg.set_timeout", [-1, 2, 30], 404, "Dialog not found")
    r.fault("dlg2.end_dlg", ["x", 1], -32602)
    r.fault("dlg2.end_dlg", [1, 2], 404, "Dialog not found")
    r.fault("dlg.set_state", ["cid", "a"], 400)
    r.fault("dlg.set_state", ["cid", "a", "b"], 404, "Dialog not found")
    r.fault("dlg.set_state", ["cid", "a", "b", 4], 400,
            "Only state 5 (ended, without BYEs) can be set")
    r.fault("dlg.set_state", ["cid", "a", "b", "five"], -32602)
    r.fault("dlg.bridge_dlg", [], 400)
    r.fault("dlg.bridge_dlg", ["sip:a@127.0.0.1"], 400)
    r.fault("dlg.bridge_dlg", ["nonsense", "sip:b@127.0.0.1"], 400)
    r.fault("dlg.bridge_dlg", ["sip:a@127.0.0.1", "sip:b@127.0.0.1", "not a uri"], 400)
    r.fault("dlg.bridge_dlg", ["sip:a@127.0.0.1", "<sip:b@127.0.0.1>"], 400)
    r.fault("dlg.dump_file", [], 400)
    r.fault("dlg.dump_file", [""], 400, "Empty file name")
    r.fault("dlg.dump_file", ["/nonexistent-dir/dump.json"], 500,
            "Cannot open /nonexistent-dir/dump.json: No such file or directory")
    assert r.ok("dlg2.end_all_active_dlg") == {"terminated": 0}
    assert r.ok("mem.info")["dialogs"] == 0
    # still serving
    assert r.ok("dlg.list") == [] and r.ok("core.version").startswith("imsdlgd")


# --------------------------------------------------------------------------
# Timer J: what a finished non-INVITE transaction keeps, seen in mem.info
# --------------------------------------------------------------------------
def test_finished_non_invite_lingers_in_compact_form(dlg_rpc_proxy):
    """Over UDP a non-INVITE server transaction answers a retransmission of
    its request with its reply again for 64*T1 (timer J, RFC 3261 §17.2.2),
    and no longer. Past the wait time (wt_timer) only its compact form is
    left: mem.info still counts a transaction, of less than half the bytes
    of the whole one (its request, the request's index, its branch); it
    answers the retransmission itself; once timer J is over, the same
    request goes through as a new one. Both stages are cleanup timers,
    each up to 64 ms late (core.h, tmr_start_coarse) and 16 ms more
    (the loop's grain)."""
    from test_proxy_core import options_to_sink, relay_to_sink

    t1_ms, wait_ms = 60, 600  # timer J: 3.84 s
    late = 0.064 + 0.016
    with relay_to_sink(dlg_rpc_proxy, {("tm", "retr_timer1"): t1_ms,
                                       ("tm", "wt_timer"): wait_ms}) as (sink, r, s, port):
        s.settimeout(WAIT)
        request = options_to_sink("linger", sink, port)
        sent = time.monotonic()
        s.sendto(request, (r.proxy.host, r.proxy.port))
        reply = s.recv(65535)
        whole = r.ok("mem.info")
        assert time.monotonic() - sent < wait_ms / 1000, "mem.info came after the wait time"
        assert Msg.parse(reply.decode("latin-1")).code == 200 and len(sink.got) == 1
        assert whole["transactions"] == 1, whole

        time.sleep(wait_ms / 1000 + late + 0.2)
        compact = r.ok("mem.info")
        assert compact["transactions"] == 1, compact
        assert 0 < 2 * compact["transaction_bytes"] < whole["transaction_bytes"], (whole, compact)
        s.sendto(request, (r.proxy.host, r.proxy.port))
        assert s.recv(65535) == reply
        assert len(sink.got) == 1, "a retransmission went through during timer J"

        time.sleep(max(0.0, sent + 64 * t1_ms / 1000 + 2 * late + 0.5 - time.monotonic()))
        gone = r.ok("mem.info")
        assert gone["transactions"] == 0 and gone["transaction_bytes"] == 0, gone
        s.sendto(request, (r.proxy.host, r.proxy.port))
        assert Msg.parse(s.recv(65535).decode("latin-1")).code == 200
        assert len(sink.got) == 2, "after timer J the request is a new one"
