-- Dialog tests, spiral: an initial INVITE for sip:spiral@<this proxy> is
-- record-routed, tracked with dlg_manage() and sent back to this proxy as
-- sip:pass2@<this proxy>; on that second pass it is record-routed and
-- tracked again, then sent to the callee, sip:service@127.0.0.1:@UAS_PORT@.
-- One dialog must result. An in-dialog INFO is answered
-- "200 DLG_count=<$DLG_count> processed=<$stat(processed_dialogs)>" and
-- ends the call with dlg_terminate("all", "spiral done").

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
            if KSR.is_method("INFO") then
                local counts = "DLG_count=" .. tostring(KSR.pv.get("$DLG_count")) ..
                        " processed=" .. tostring(KSR.pv.get("$stat(processed_dialogs)"))
                KSR.info("spiral: " .. counts .. "\n")
                KSR.sl.sl_send_reply(200, counts)
                if KSR.ims_dialog.dlg_terminate("all", "spiral done") < 0 then
                    KSR.err("dlg_terminate failed\n")
                end
                KSR.x.exit()
            end
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
        local user = KSR.pv.get("$rU")
        KSR.info("spiral: INVITE for " .. tostring(KSR.pv.get("$ru")) .. "\n")
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
        if user == "spiral" then
            KSR.pv.sets("$rU", "pass2")
        elseif user == "pass2" then
            KSR.pv.sets("$ru", "sip:service@127.0.0.1:@UAS_PORT@")
        end
    end
    relay()
end
