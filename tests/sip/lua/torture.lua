-- Script for the RFC 4475 torture messages. As default.lua, except that
-- whatever would be forwarded goes to the test's sink at 127.0.0.1:@SINK_PORT@
-- ($du), never to the example.com / 192.0.2.x hosts the messages name.

local function relay()
    KSR.pv.sets("$du", "sip:127.0.0.1:@SINK_PORT@")
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
    KSR.x.exit()
end

function ksr_request_route()
    KSR.info("torture: " .. tostring(KSR.pv.get("$rm")) .. " " .. tostring(KSR.pv.get("$ci")) .. "\n")
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
    end
    relay()
end
