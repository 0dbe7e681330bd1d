-- force_rport(): a request with X-Force-Rport makes the script call
-- KSR.force_rport(); OPTIONS are answered here (statelessly), other
-- requests relayed. KEMI names only, for both proxies.

function ksr_request_route()
    if KSR.hdr.is_present("X-Force-Rport") > 0 then
        KSR.force_rport()
    end
    if KSR.is_OPTIONS() then
        KSR.sl.sl_send_reply(200, "Here")
        KSR.x.exit()
    end
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
    KSR.x.exit()
end
