-- UDP in, TCP out: initial requests are sent over TCP to the callee at
-- 127.0.0.1:@UAS_PORT@ with t_relay_to_proto_addr(), whatever their transport;
-- in-dialog requests follow the recorded route (the callee's Contact says
-- transport=TCP). Otherwise the default record-routing proxy (default.lua).

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
    end
    if KSR.tm.t_relay_to_proto_addr("tcp", "127.0.0.1", @UAS_PORT@) < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
end
