-- Metrics tests (test_metrics.py): the default record-routing proxy, and
-- every initial INVITE is a dialog in three profiles:
--   caller (with values): $fU
--   calls  (no value)
--   tenant (with values): a constant that needs escaping as a label value
-- modparam("ims_dialog", "profiles_with_value", "caller;tenant") and
-- modparam("ims_dialog", "profiles_no_value", "calls").

local TENANT = 'we"ird\\x y'

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
        if KSR.pv.get("$hdr(X-Reply-Error)") then
            KSR.sl.sl_reply_error()
        else
            KSR.sl.sl_send_reply(404, "Not here")
        end
        KSR.x.exit()
    end
    if KSR.tm.t_check_trans() == 0 then
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
        KSR.ims_dialog.set_dlg_profile("caller", KSR.pv.get("$fU"))
        KSR.ims_dialog.set_dlg_profile("calls")
        KSR.ims_dialog.set_dlg_profile("tenant", TENANT)
    end
    relay()
end
