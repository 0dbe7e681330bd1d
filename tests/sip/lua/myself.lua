-- Answers every request itself with what the is_myself*() functions say
-- of it (X-Myself-* headers on a 200), and a few KSR.kx getters (X-Kx-*);
-- KEMI names only, for both proxies (conftest loads kemix).

local function put(name, value)
    KSR.hdr.append_to_reply(name .. ": " .. tostring(value) .. "\r\n")
end

function ksr_request_route()
    put("X-Myself-Ruri", KSR.is_myself_ruri())
    put("X-Myself-Furi", KSR.is_myself_furi())
    put("X-Myself-Turi", KSR.is_myself_turi())
    put("X-Myself-Srcip", KSR.is_myself_srcip())
    put("X-Myself-Uri", KSR.is_myself(KSR.pv.get("$hdr(X-Uri)")))
    put("X-Kx-Srcport", KSR.kx.get_srcport())
    put("X-Kx-Ruser", KSR.kx.gete_ruser())
    put("X-Kx-Duri", KSR.kx.getw_duri())
    put("X-Kx-Pv", KSR.pv.getw("$du"))
    KSR.sl.sl_send_reply(200, "Checked")
    KSR.x.exit()
end
