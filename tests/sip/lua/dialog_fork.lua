-- Dialog tests with parallel forking: every initial INVITE is tracked with
-- dlg_manage() and forked to its Request-URI (UAS A) and, through an
-- appended branch, to UAS B at 127.0.0.1:@UAS_B_PORT@.
--   * an in-dialog INFO makes the script end the call with
--     dlg_terminate("all", "@REASON@") (as dialog.lua);
--   * a provisional reply carrying "X-Terminate" makes the reply route end
--     the still-ringing call with dlg_terminate("all", "@REASON@").

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
                KSR.info("INFO in dialog state " .. tostring(KSR.pv.get("$DLG_status")) .. "\n")
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
        KSR.corex.append_branch_uri("sip:service@127.0.0.1:@UAS_B_PORT@")
        KSR.tm.t_on_reply("on_reply")
    end
    relay()
end

function on_reply()
    if KSR.hdr.is_present("X-Terminate") > 0 then
        KSR.info("X-Terminate in a " .. tostring(KSR.pv.get("$rs")) .. ": terminating\n")
        if KSR.ims_dialog.dlg_terminate("all", "@REASON@") < 0 then
            KSR.err("dlg_terminate failed in the reply route\n")
        end
    end
end
