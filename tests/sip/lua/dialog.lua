-- Dialog tests: the default record-routing proxy, every initial INVITE
-- tracked with dlg_manage(). An in-dialog INFO makes the script end the
-- call with dlg_terminate(side) (side from X-Side, default "all") and logs
-- what that returned. X-Dlg-Props sets dialog properties (keep-alives);
-- X-Do, X-Validate and X-Set-Ruri below call the other functions on the
-- dialog.

local function relay()
    if KSR.tm.t_relay() < 0 then
        KSR.sl.sl_send_reply(500, "Server Internal Error")
    end
    KSR.x.exit()
end

-- An OPTIONS naming a call in X-Callid/X-Ftag/X-Ttag: dlg_get() makes that
-- call's dialog current (whichever worker owns it), the reply reports what
-- the script sees of it, and X-Action: terminate ends it through
-- KSR.x.modf (Kamailio's native function names); X-Action: req sends an
-- INFO to both sides with dlg_req_within().
local function report_other_call()
    local got = KSR.ims_dialog.dlg_get(KSR.pv.get("$hdr(X-Callid)"),
                                       KSR.pv.get("$hdr(X-Ftag)"),
                                       KSR.pv.get("$hdr(X-Ttag)"))
    if got < 0 then
        KSR.sl.sl_send_reply(404, "No Such Dialog")
        return
    end
    KSR.pv.sets("$dlg_var(seen)", (KSR.pv.get("$dlg_var(seen)") or "") .. "x")
    KSR.ims_dialog.dlg_setflag(3)
    local function put(name, value)
        KSR.hdr.append_to_reply(name .. ": " .. tostring(value) .. "\r\n")
    end
    for _, attr in ipairs({"state", "callid", "from_tag", "to_tag", "to_uri",
                           "from_cseq", "to_bindaddr", "lifetime"}) do
        put("X-Dlg-" .. attr, KSR.pv.get("$dlg(" .. attr .. ")"))
    end
    put("X-Seen", KSR.pv.get("$dlg_var(seen)"))
    put("X-Pre", KSR.pv.get("$dlg_var(pre)"))
    put("X-Flag5", KSR.ims_dialog.dlg_isflagset(5))
    put("X-Toroute", KSR.pv.get("$dlg(toroute)"))
    put("X-Flag3", KSR.x.modf("dlg_isflagset", "3"))
    put("X-Known", KSR.x.modf("is_known_dlg"))
    put("X-Ctx-Set", KSR.pv.get("$dlg_ctx(set)"))
    put("X-Ctx-Dir", KSR.pv.get("$dlg_ctx(dir)"))
    put("X-Status", KSR.pv.get("$DLG_status"))
    if KSR.pv.get("$hdr(X-Action)") == "req" then
        put("X-Req", KSR.ims_dialog.dlg_req_within("all", "INFO", "X-By: dlg_get\r\n"))
    end
    if KSR.pv.get("$hdr(X-Action)") == "terminate" then
        put("X-Terminated", KSR.x.modf("dlg_terminate", "all", "by dlg_get"))
        put("X-Again", KSR.x.modf("dlg_terminate", "all", "twice"))
    end
    KSR.sl.sl_send_reply(200, "Found")
end

-- X-Dlg-Props: a comma-separated list of dialog properties to set
-- (dlg_set_property), or to reset when prefixed with "-"; each result is
-- logged.
local function apply_props()
    local props = KSR.pv.get("$hdr(X-Dlg-Props)")
    if not props then
        return
    end
    for p in string.gmatch(props, "[^,%s]+") do
        local rc
        if p:sub(1, 1) == "-" then
            rc = KSR.ims_dialog.dlg_reset_property(p:sub(2))
        else
            rc = KSR.ims_dialog.dlg_set_property(p)
        end
        KSR.info("property " .. p .. ": " .. rc .. "\n")
    end
end

-- The answer of a request that asked the script to call a function: 200
-- with what it returned in X-Rc.
local function reply_rc(rc, reason)
    KSR.hdr.append_to_reply("X-Rc: " .. tostring(rc) .. "\r\n")
    KSR.sl.sl_send_reply(200, reason)
end

-- An in-dialog OPTIONS with X-Do makes the script act on its dialog and
-- answer it itself, with what the function returned in X-Rc:
--   X-Do: req SIDE METHOD [TEXT]  dlg_req_within(SIDE, METHOD), or with TEXT
--                                 the five-argument form: an X-Sent-By line
--                                 and TEXT as a text/plain body
--   X-Do: bye SIDE                dlg_bye(SIDE)
--   X-Do: refer SIDE URI          dlg_refer(SIDE, URI)
-- and out of dialog (OPTIONS), on another call:
--   X-Do: refer_cid CALLID SIDE URI      dlg_refer_cid(CALLID, SIDE, URI)
--   X-Do: refer_did HE HI SIDE URI       dlg_refer_did(HE, HI, SIDE, URI)
local function act_on_dialog(what)
    local verb, a, b, c, d = what:match("^(%S+)%s*(%S*)%s*(%S*)%s*(%S*)%s*(%S*)")
    local rc
    if verb == "req" and c ~= "" then
        rc = KSR.ims_dialog.dlg_req_within(a, b, "X-Sent-By: script\r\n", "text/plain", c)
    elseif verb == "req" then
        rc = KSR.ims_dialog.dlg_req_within(a, b)
    elseif verb == "bye" then
        rc = KSR.ims_dialog.dlg_bye(a)
    elseif verb == "refer" then
        rc = KSR.ims_dialog.dlg_refer(a, b)
    elseif verb == "refer_cid" then
        rc = KSR.ims_dialog.dlg_refer_cid(a, b, c)
    elseif verb == "refer_did" then
        rc = KSR.ims_dialog.dlg_refer_did(tonumber(a), tonumber(b), c, d)
    end
    reply_rc(rc, "Done")
end

-- Out-of-dialog OPTIONS that make the script call one function on other
-- calls, each named by a header whose value holds the arguments; the
-- reply is reply_rc()'s:
--   X-Timeout-Profile: NAME VALUE SECONDS  dlg_set_timeout_by_profile
--   X-Timeout-Of: H_ENTRY H_ID SECONDS     dlg_set_timeout of that dialog
--   X-Remote: CMD PROFILE VALUE UID EXPIRES
--                                          dlg_remote_profile (a VALUE of
--                                          "-" is the empty string)
--   X-Bridge: FROM TO [OP]                 dlg_bridge(FROM, TO, OP)
--   X-Do: ...                              act_on_dialog() above
local probes = {
    {"X-Timeout-Profile", "Timeout", function(v)
        local name, value, secs = v:match("(%S+) (%S+) (%d+)")
        return KSR.ims_dialog.dlg_set_timeout_by_profile(name, value, tonumber(secs))
    end},
    {"X-Timeout-Of", "Timeout", function(v)
        local he, hi, secs = v:match("(%d+) (%d+) (%d+)")
        return KSR.ims_dialog.dlg_set_timeout(tonumber(secs), tonumber(he), tonumber(hi))
    end},
    {"X-Remote", "Remote", function(v)
        local cmd, name, value, uid, exp = v:match("(%S+) (%S+) (%S+) (%S+) (%d+)")
        if value == "-" then
            value = ""
        end
        return KSR.ims_dialog.dlg_remote_profile(cmd, name, value, uid, tonumber(exp))
    end},
    {"X-Bridge", "Bridge", function(v)
        local from, to, op = v:match("^(%S+) (%S+)%s*(%S*)")
        return KSR.ims_dialog.dlg_bridge(from, to, op)
    end},
}

-- An OPTIONS carrying one of the probes' headers: answered; true if so.
local function answer_probe()
    if not KSR.is_OPTIONS() then
        return false
    end
    for _, probe in ipairs(probes) do
        local name, reason, call = probe[1], probe[2], probe[3]
        if KSR.hdr.is_present(name) > 0 then
            reply_rc(call(KSR.pv.get("$hdr(" .. name .. ")")), reason)
            return true
        end
    end
    if KSR.hdr.is_present("X-Do") > 0 then
        act_on_dialog(KSR.pv.get("$hdr(X-Do)"))
        return true
    end
    return false
end

-- An OPTIONS with X-Var-Call, X-Var-Ftag and X-Var-Ttag (Call-ID and tags
-- of a call): dlg_set_var(..., "color", X-Var-Set), then dlg_get_var(...,
-- "color", "$var(got)"); the reply carries both results (X-Set, X-Get),
-- the value read (X-Value) and is_known_dlg() after (X-Known).
local function vars_of_other_call()
    local ci = KSR.pv.get("$hdr(X-Var-Call)")
    local ft = KSR.pv.get("$hdr(X-Var-Ftag)")
    local tt = KSR.pv.get("$hdr(X-Var-Ttag)") or ""
    local set = KSR.ims_dialog.dlg_set_var(ci, ft, tt, "color", KSR.pv.get("$hdr(X-Var-Set)") or "")
    local get = KSR.ims_dialog.dlg_get_var(ci, ft, tt, "color", "$var(got)")
    KSR.hdr.append_to_reply("X-Set: " .. set .. "\r\nX-Get: " .. get .. "\r\n")
    KSR.hdr.append_to_reply("X-Value: " .. tostring(KSR.pv.get("$var(got)")) .. "\r\n")
    KSR.hdr.append_to_reply("X-Known: " .. KSR.ims_dialog.is_known_dlg() .. "\r\n")
    KSR.sl.sl_send_reply(200, "Vars")
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
            apply_props()
            if KSR.hdr.is_present("X-Do") > 0 then
                act_on_dialog(KSR.pv.get("$hdr(X-Do)"))
                KSR.x.exit()
            end
            if KSR.hdr.is_present("X-Validate") > 0 then
                local rc = KSR.ims_dialog.validate_dialog()
                if rc < 0 then
                    KSR.sl.sl_send_reply(400, "Invalid Dialog " .. rc)
                    KSR.x.exit()
                end
            end
            if KSR.hdr.is_present("X-Set-Ruri") > 0 then
                KSR.info("dlg_set_ruri: " .. KSR.ims_dialog.dlg_set_ruri() .. "\n")
            end
            if KSR.is_method("INFO") then
                local st = KSR.pv.get("$DLG_status")
                local side = KSR.pv.get("$hdr(X-Side)") or "all"
                KSR.info("INFO in dialog state " .. tostring(st) .. "\n")
                KSR.sl.sl_send_reply(200, "Terminating")
                local rc = KSR.ims_dialog.dlg_terminate(side, "@REASON@")
                KSR.info("dlg_terminate(" .. side .. ") " .. KSR.pv.get("$ci")
                         .. " CSeq " .. KSR.pv.get("$cs") .. ": " .. rc .. "\n")
                if rc < 0 then
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
    if answer_probe() then
        KSR.x.exit()
    end
    if KSR.is_OPTIONS() and KSR.hdr.is_present("X-Var-Call") > 0 then
        vars_of_other_call()
        KSR.x.exit()
    end
    if KSR.is_OPTIONS() and KSR.hdr.is_present("X-Callid") > 0 then
        report_other_call()
        KSR.x.exit()
    end
    if KSR.tm.t_check_trans() == 0 then
        KSR.x.exit()
    end
    if KSR.is_INVITE() then
        KSR.rr.record_route()
        if KSR.pv.get("$rU") == "ctx" then
            -- before the dialog exists: kept in the message's context
            KSR.pv.sets("$dlg_var(pre)", "early")
            KSR.ims_dialog.dlg_setflag(5)
            KSR.pv.seti("$dlg_ctx(timeout)", 3)
            KSR.pv.seti("$dlg_ctx(timeout_bye)", 0)
            KSR.pv.sets("$dlg_ctx(timeout_route)", "on_dlg_timeout")
        end
        apply_props()
        if KSR.hdr.is_present("X-Newtran-First") > 0 then
            -- the transaction first: dlg_manage() creates the dialog at once
            KSR.tm.t_newtran()
        end
        local profile = KSR.pv.get("$hdr(X-Profile)")
        if profile then
            local name, value = profile:match("(%S+)=(%S+)")
            KSR.ims_dialog.set_dlg_profile(name, value)
        end
        KSR.ims_dialog.dlg_manage()
    end
    relay()
end

-- modparam("ims_dialog", "event_callback", "ksr_dialog_event") makes the
-- engine call this with the dialog current.
function ksr_dialog_event(evname)
    KSR.info("EVENT " .. evname .. " callid=" .. tostring(KSR.pv.get("$dlg(callid)"))
             .. " status=" .. tostring(KSR.pv.get("$DLG_status"))
             .. " ci=" .. tostring(KSR.pv.get("$ci")) .. "\n")
end

-- $dlg_ctx(timeout_route) of the "ctx" calls.
function on_dlg_timeout()
    KSR.info("TIMEOUT-ROUTE callid=" .. tostring(KSR.pv.get("$dlg(callid)"))
             .. " pre=" .. tostring(KSR.pv.get("$dlg_var(pre)")) .. "\n")
end
