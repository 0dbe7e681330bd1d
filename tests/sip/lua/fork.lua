-- Parallel forking: every initial INVITE goes to its Request-URI (UAS A) and,
-- through an appended branch, to UAS B at 127.0.0.1:@UAS_B_PORT@
-- (X-Disable-6xx: t_set_disable_6xx(1) first; X-No-100:
-- t_set_auto_inv_100(0)).
-- Otherwise the default record-routing proxy (default.lua).

local function relay()
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
    KSR.x.exit()
end

function ksr_request_route()
    if KSR.maxfwd.process_maxfwd(10) < 0 then
        KSR.sl.sl_send_reply(483, "Too Many Hops")
        KSR.x.exit()
    end
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        KSR.x.exit()
    end
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() > 0 then
            relay()
        end
        if KSR.is_ACK() then
            if KSR.tm.t_check_trans() > 0 then
                relay()
            end
            KSR.x.exit()
        end
        KSR.sl.sl_send_reply(404, "Not here")
        KSR.x.exit()
    end
    if KSR.is_ACK() then
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        KSR.corex.append_branch_uri("sip:service@127.0.0.1:@UAS_B_PORT@")
        if KSR.pv.get("$hdr(X-Disable-6xx)") then
            KSR.tm.t_set_disable_6xx(1)
        end
        if KSR.pv.get("$hdr(X-No-100)") then
            KSR.tm.t_set_auto_inv_100(0)
        end
    end
    relay()
end
