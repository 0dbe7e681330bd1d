-- Dialog tests: the default record-routing proxy, every initial INVITE
-- tracked with dlg_manage(). An in-dialog INFO whose body says
-- "terminate" makes the script end the call with dlg_terminate("all").

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
                local st = KSR.pv.get("$DLG_status")
                KSR.info("INFO in dialog state " .. tostring(st) .. "\n")
                KSR.sl.sl_send_reply(200, "Terminating")
                if KSR.ims_dialog.dlg_terminate("all", "@REASON@") < 0 then
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
        KSR.rr.record_route()
        KSR.ims_dialog.dlg_manage()
    end
    relay()
end

-- modparam("ims_dialog", "event_callback", "ksr_dialog_event") makes the
-- engine call this with the dialog current.
function ksr_dialog_event(evname)
    KSR.info("EVENT " .. evname .. " callid=" .. tostring(KSR.pv.get("$dlg(callid)"))
             .. " status=" .. tostring(KSR.pv.get("$DLG_status"))
             .. " ci=" .. tostring(KSR.pv.get("$ci")) .. "\n")
end
