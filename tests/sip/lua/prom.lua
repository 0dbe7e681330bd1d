-- Script metrics tests (test_metrics.py): every request counts in
-- sip_requests{method}; an OPTIONS is answered 200 after the moves its
-- headers ask for, with what each returned in X-Ret (space-separated):
--   X-Gauge: V          gauge_set_l2("load", V, "n1", "z1")
--   X-Observe: V        histogram_observe_l0("latency", V)
--   X-Reset: 1          counter_reset_l1("sip_requests", "OPTIONS")
--   X-Wrong: 1          calls the metrics do not allow: an undeclared
--                       one, a wrong number of labels, a counter going
--                       down, a gauge set to something not a number
-- Other requests get 404.

function ksr_request_route()
    KSR.xhttp_prom.counter_inc_l1("sip_requests", 1, KSR.pv.get("$rm"))
    if not KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(404, "Not here")
        KSR.x.exit()
    end
    local rets = {}
    local function note(r)
        rets[#rets + 1] = tostring(r)
    end
    local gauge = KSR.pv.get("$hdr(X-Gauge)")
    if gauge then
        note(KSR.xhttp_prom.gauge_set_l2("load", gauge, "n1", "z1"))
    end
    local observed = KSR.pv.get("$hdr(X-Observe)")
    if observed then
        note(KSR.xhttp_prom.histogram_observe_l0("latency", observed))
    end
    if KSR.pv.get("$hdr(X-Reset)") then
        note(KSR.xhttp_prom.counter_reset_l1("sip_requests", "OPTIONS"))
    end
    if KSR.pv.get("$hdr(X-Wrong)") then
        note(KSR.xhttp_prom.counter_inc_l0("nosuch", 1))
        note(KSR.xhttp_prom.counter_inc_l0("sip_requests", 1))
        note(KSR.xhttp_prom.counter_inc_l1("sip_requests", -1, "OPTIONS"))
        note(KSR.xhttp_prom.gauge_set_l2("load", "many", "n1", "z1"))
        note(KSR.xhttp_prom.gauge_set_l2("sip_requests", "1", "a", "b"))
    end
    KSR.hdr.append_to_reply("X-Ret: " .. table.concat(rets, " ") .. "\r\n")
    KSR.sl.sl_send_reply(200, "OK")
end
