-- KSR.textops string functions (test_modules.py), for both proxies: every
-- request is answered 200 with what cmp_str(A, B), cmp_istr(A, B),
-- starts_with(A, B), in_list(A, L, S) and in_list_prefix(A, L, S)
-- returned, space-separated in X-T, where A, B, L and S are the values of
-- X-A, X-B, X-List and X-Sep.

function ksr_request_route()
    local function h(name)
        return KSR.pv.get("$hdr(" .. name .. ")") or ""
    end
    local a, b, list, sep = h("X-A"), h("X-B"), h("X-List"), h("X-Sep")
    local rets = {
        KSR.textops.cmp_str(a, b),
        KSR.textops.cmp_istr(a, b),
        KSR.textops.starts_with(a, b),
        KSR.textops.in_list(a, list, sep),
        KSR.textops.in_list_prefix(a, list, sep),
    }
    KSR.hdr.append_to_reply("X-T: " .. table.concat(rets, " ") .. "\r\n")
    KSR.sl.sl_send_reply(200, "Compared")
    KSR.x.exit()
end
