-- KSR.siputils string and Request-URI checks (test_modules.py), for both
-- proxies: every request is answered 200 with what each check returned,
-- space-separated in X-Sv: is_tel_number, is_numeric, is_alphanum and
-- is_alphanumex(.., "+-") of X-Value, uri_param(X-Param),
-- uri_param_value(X-Param, X-Param-Value), uri_param_any(X-Param),
-- is_uri(X-Uri); with X-Add and X-Rm, what add_uri_param(X-Add) and then
-- uri_param_rm(X-Rm) returned (X-Edit-Ret) and the Request-URI after them
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
        KSR.siputils.is_alphanumex(value, "+-"),
        KSR.siputils.uri_param(param),
        KSR.siputils.uri_param_value(param, KSR.pv.get("$hdr(X-Param-Value)") or ""),
        KSR.siputils.uri_param_any(param),
        KSR.siputils.is_uri(KSR.pv.get("$hdr(X-Uri)") or "nothing"),
    }
    put("X-Sv", table.concat(rets, " "))
    local add, rm = KSR.pv.get("$hdr(X-Add)"), KSR.pv.get("$hdr(X-Rm)")
    if add or rm then
        local edits = {}
        if add then
            edits[#edits + 1] = KSR.siputils.add_uri_param(add)
        end
        if rm then
            edits[#edits + 1] = KSR.siputils.uri_param_rm(rm)
        end
        put("X-Edit-Ret", table.concat(edits, " "))
        put("X-Ruri", KSR.pv.get("$ru"))
    end
    KSR.sl.sl_send_reply(200, "Checked")
    KSR.x.exit()
end
