-- Dialog RPC tests (test_dlg_rpc.py): the record-routing proxy of
-- dialog_profile.lua without its limit. Every initial INVITE is tracked
-- with dlg_manage(), joins profile "caller" with value $fU and the
-- no-value profile "tracked"; each reply to it sets the dialog variables
-- "caller" ($fU) and "last_reply" ($rs). An INVITE to user "fork" also
-- goes to 127.0.0.1:@FORK_PORT@ (an appended branch). An out-of-dialog
-- OPTIONS is answered 200 here: a probe of how fast a worker answers.

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
    if KSR.is_method("OPTIONS") then
        KSR.sl.sl_send_reply(200, "Alive")
        KSR.x.exit()
    end
    if KSR.tm.t_check_trans() == 0 then
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
        KSR.ims_dialog.set_dlg_profile("caller", KSR.pv.get("$fU"))
        KSR.ims_dialog.set_dlg_profile("tracked")
        if KSR.pv.get("$rU") == "fork" then
            KSR.corex.append_branch_uri("sip:fork@127.0.0.1:@FORK_PORT@")
        end
        KSR.tm.t_on_reply("on_reply")
    end
    relay()
end

function on_reply()
    KSR.pv.sets("$dlg_var(caller)", KSR.pv.get("$fU"))
    KSR.pv.sets("$dlg_var(last_reply)", tostring(KSR.pv.get("$rs")))
end
