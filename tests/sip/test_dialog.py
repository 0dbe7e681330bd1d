"""Dialog engine tests: SIPp calls through imsdlgd with ims_dialog loaded,
asserting on the BYEs the proxy generates (issue 4). imsdlgd only: the
KEMI names are Kamailio's, but Kamailio's ims_dialog cannot do these."""
from __future__ import annotations

import re

import pytest

import conftest
from sipwire import requests, responses

pytestmark = pytest.mark.skipif(conftest.PROXY_KIND != "imsdlgd",
                                reason="dialog tests run against imsdlgd")


def ruri(port: int) -> str:
    return f"sip:service@127.0.0.1:{port}"


@pytest.fixture
def dlg_proxy(proxy, monkeypatch):
    """proxy() with loadmodule "ims_dialog" and its modparams."""
    orig = conftest.render_cfg

    def render(kind, port, children, lua, modparams=None, debug=2):
        text = orig(kind, port, children, lua, modparams, debug)
        return text.replace('loadmodule "app_lua.so"',
                            'loadmodule "ims_dialog.so"\nloadmodule "app_lua.so"')

    monkeypatch.setattr(conftest, "render_cfg", render)
    return proxy


def one(msgs, what):
    assert len(msgs) == 1, f"{what}: expected 1, got {len(msgs)}"
    return msgs[0]


def hdr(msg, name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", msg.raw, re.M | re.I)
    return m.group(1).strip() if m else None


def check_bye(bye, from_tag, to_tag, cseq_above, reason):
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
    p = dlg_proxy("dialog.lua", subst={"REASON": "unused"},
                  modparams={("ims_dialog", "default_timeout"): 2})
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
