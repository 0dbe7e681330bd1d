-- Default record-routing proxy of the protocol tests (tests/sip).
-- Mirror of examples/imsdlg.lua. KEMI names only, so that Kamailio (app_lua)
-- and imsdlgd run this same file.
--
-- Return values as Kamailio gives them to Lua (checked against 5.6):
--   KSR.is_INVITE() and the other KSR.is_METHOD(): boolean
--   maxfwd.process_maxfwd(): 1 decremented, 2 header added, -1 when it was 0
--   siputils.has_totag(), rr.loose_route(), tm.t_check_trans(): 1 / -1
--   tm.t_relay(): > 0 relayed, < 0 error

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

    -- CANCEL: relay it only if it cancels a transaction of ours
    if KSR.is_CANCEL() then
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        KSR.x.exit()
    end

    -- in-dialog requests: loose routing along the recorded route
    if KSR.siputils.has_totag() > 0 then
        if KSR.rr.loose_route() > 0 then
            relay()
        end
        if KSR.is_ACK() then
            -- the ACK of a negative final reply: t_check_trans() absorbs it
            if KSR.tm.t_check_trans() > 0 then
                relay()
            end
            KSR.x.exit()
        end
        KSR.sl.sl_send_reply(404, "Not here")
        KSR.x.exit()
    end

    -- an ACK without To tag matches nothing we could route
    if KSR.is_ACK() then
        if KSR.tm.t_check_trans() > 0 then
            relay()
        end
        KSR.x.exit()
    end

    if KSR.is_INVITE() then
        KSR.rr.record_route()
    end
    relay()
end
