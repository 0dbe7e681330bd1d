-- Dialog tests, per-call lifetime: dialog.lua plus, for every initial
-- INVITE, $avp(dlg_timeout) = @TIMEOUT@ before the transaction is created
-- (modparam("ims_dialog", "timeout_avp", "$avp(dlg_timeout)")).

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
    if KSR.tm.t_check_trans() == 0 then
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        KSR.pv.seti("$avp(dlg_timeout)", @TIMEOUT@)
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
    end
    relay()
end
