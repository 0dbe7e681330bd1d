-- KSR.siputils string and Request-URI checks (test_modules.py), for both
-- proxies: every request is answered 200 with what each check returned,
-- space-separated in X-Sv: is_tel_number, is_numeric and is_alphanum of
-- X-Value, uri_param(X-Param) and
-- uri_param_value(X-Param, X-Param-Value); with X-Add, what
-- add_uri_param(X-Add) returned (X-Add-Ret) and the Request-URI after it
-- (X-Ruri).

local function put(name, value)
    KSR.hdr.append_to_reply(name .. ": " .. tostring(value) .. "\r\n")
end

function ksr_request_route()
    local value = KSR.pv.get("$hdr(X-Value)") or ""
    local param = KSR.pv.get("$hdr(X-Param)") or "none"
    local rets = {
        KSR.siputils.is_tel_number(value),
        KSR.siputils.is_numeric(value),
        KSR.siputils.is_alphanum(value),
        KSR.siputils.uri_param(param),
        KSR.siputils.uri_param_value(param, KSR.pv.get("$hdr(X-Param-Value)") or ""),
    }
    put("X-Sv", table.concat(rets, " "))
    local add = KSR.pv.get("$hdr(X-Add)")
    if add then
        put("X-Add-Ret", KSR.siputils.add_uri_param(add))
        put("X-Ruri", KSR.pv.get("$ru"))
    end
    KSR.sl.sl_send_reply(200, "Checked")
    KSR.x.exit()
end
