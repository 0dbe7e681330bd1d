-- Dialog tests, profiles: at most 2 concurrent calls per caller.
-- modparam("ims_dialog", "profiles_with_value", "caller"); every initial
-- INVITE is tracked with dlg_manage() and put into profile "caller" with
-- value $fU, unless get_profile_size("caller", $fU) is already >= 2: then
-- 486. An out-of-dialog OPTIONS is answered "200 size=<n>", n the size of
-- the profile for its $fU.

local function relay()
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
    KSR.x.exit()
end

local function caller_calls()
    KSR.pv.seti("$var(n)", -1)
    KSR.ims_dialog.get_profile_size("caller", KSR.pv.get("$fU"), "$var(n)")
    return tonumber(KSR.pv.get("$var(n)")) or -1
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
    if KSR.is_method("OPTIONS") then
        KSR.sl.sl_send_reply(200, "size=" .. tostring(caller_calls()))
        KSR.x.exit()
    end
    if KSR.tm.t_check_trans() == 0 then
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        if caller_calls() >= 2 then
            KSR.sl.sl_send_reply(486, "Busy Here")
            KSR.x.exit()
        end
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
        KSR.ims_dialog.set_dlg_profile("caller", KSR.pv.get("$fU"))
    end
    relay()
end
