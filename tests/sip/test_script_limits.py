"""Limits that keep a faulty routing script from taking its worker down.

imsdlgd only: Kamailio has no route time limit (a looping route holds its
process for good) and would reject the modparam.
"""

from __future__ import annotations

import time

import pytest

import conftest
from sippeer import is_final, request


@pytest.fixture
def imsdlgd_only():
    if conftest.PROXY_KIND != "imsdlgd":
        pytest.skip("imsdlgd's app_lua route_time_limit")


def test_looping_route_is_stopped(imsdlgd_only, proxy, peers, children):
    p = proxy("loop.lua", modparams={("app_lua", "route_time_limit"): 300})
    asker = peers("asker")
    for n, user in enumerate(["loop", "fine", "loop", "fine"], 1):
        t0 = time.monotonic()
        asker.send(request("OPTIONS", f"sip:{user}@127.0.0.1:{p.port}", asker, cseq=n,
                           call_id=f"loop-{n}@test"), p.port)
        final = asker.wait_for(lambda m, n=n: is_final("OPTIONS")(m) and m.cseq_num == n, f"answer {n}")
        took = time.monotonic() - t0
        if user == "loop":
            assert final.code == 500 and 0.25 < took < 5, (final, took)
        else:
            assert (final.code, final.reason) == (200, "Fine"), final
    log = p.log_text()
    assert log.count("a route has run for 300 ms: stopping it") == 2, log
    assert log.count("route stopped: it ran for 300 ms or more") == 2, log
    assert p.alive()
