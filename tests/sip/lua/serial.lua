-- Serial forking from a failure route: an initial INVITE goes to its
-- Request-URI (UAS A); every failure route first runs @DROP@ (a
-- t_drop_replies() call, or nothing); if the branch ended with
-- @RETRY_CODE@, it arms itself again, appends a branch to UAS B at
-- 127.0.0.1:@UAS_B_PORT@ and relays again, so the caller never sees the
-- @RETRY_CODE@. Otherwise the default record-routing proxy (default.lua).

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
        KSR.tm.t_on_failure("failure_route")
    end
    relay()
end

-- named by t_on_failure(): runs when every branch has a final reply >= 300
function failure_route()
    if KSR.tm.t_is_canceled() > 0 then
        KSR.x.exit()
    end
    local code = KSR.pv.get("$T_reply_code")
    KSR.info("failure_route: branch answered " .. tostring(code) .. "\n")
    @DROP@
    if code == @RETRY_CODE@ then
        KSR.tm.t_on_failure("failure_route")
        KSR.corex.append_branch_uri("sip:service@127.0.0.1:@UAS_B_PORT@")
        if KSR.tm.t_relay() < 0 then
            KSR.err("failure_route: t_relay to the second branch failed\n")
        end
    end
end
