-- A routing script with a bug: a request for user "loop" never leaves the
-- request route (app_lua's route_time_limit must stop it); everything else
-- gets a 200 from the script itself.

function ksr_request_route()
    if KSR.pv.get("$rU") == "loop" then
        local n = 0
        while true do
            n = n + 1
        end
    end
    KSR.sl.sl_send_reply(200, "Fine")
    KSR.x.exit()
end
