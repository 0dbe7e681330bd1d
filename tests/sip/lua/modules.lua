-- KSR.sanity, KSR.tmx, KSR.xlog, KSR.textops and
-- KSR.siputils.is_first_hop, for both proxies.
-- An OPTIONS is checked with sanity_check(X-Checks, X-Uri-Checks), or
-- sanity_check_defaults() without X-Checks; one that passes is answered
-- 200 "Sane" with what is_first_hop() and the tmx route tests say; one
-- that fails ends the route (with X-Reply: yes, after sanity_reply()).
-- An INVITE is relayed to its Request-URI (X-Reply-No-Connect,
-- X-Reply-Close and X-Forward-Close call the core functions of those
-- names first; with X-Proto by t_relay_to_proto()); the branch route
-- marks it with
-- the tmx route tests, the onreply route keeps them in an AVP, and the
-- failure route answers 599 with all of them in the reason phrase.

local function routes()
    return string.format("req=%d,fail=%d,branch=%d,reply=%d",
        KSR.tmx.t_is_request_route(), KSR.tmx.t_is_failure_route(),
        KSR.tmx.t_is_branch_route(), KSR.tmx.t_is_reply_route())
end

function ksr_request_route()
    if KSR.is_INVITE() then
        if KSR.pv.get("$hdr(X-Reply-No-Connect)") then
            KSR.set_reply_no_connect()
        end
        if KSR.pv.get("$hdr(X-Reply-Close)") then
            KSR.set_reply_close()
        end
        if KSR.pv.get("$hdr(X-Forward-Close)") then
            KSR.set_forward_close()
        end
        if KSR.tmx.t_precheck_trans() > 0 then
            KSR.info("precheck: a retransmission of " .. KSR.pv.get("$ci") .. "\n")
            KSR.tm.t_check_trans()
            KSR.x.exit()
        end
        KSR.tm.t_on_branch("mark_branch")
        KSR.tm.t_on_reply("note_reply")
        KSR.tm.t_on_failure("answer_failure")
        local proto = KSR.pv.get("$hdr(X-Proto)")
        if proto then
            KSR.tm.t_relay_to_proto(proto)
        else
            KSR.tm.t_relay()
        end
        KSR.x.exit()
    end
    if KSR.is_ACK() then
        KSR.tm.t_check_trans()
        KSR.x.exit()
    end
    local fwd = KSR.pv.get("$hdr(X-Forward-To)")
    if fwd then
        if KSR.pv.get("$hdr(X-Local-Rport)") then
            KSR.add_local_rport()
        end
        if KSR.pv.get("$hdr(X-No-Connect)") then
            KSR.set_forward_no_connect()
        end
        if KSR.pv.get("$hdr(X-Insert)") then
            KSR.hdr.insert("X-Top: first\r\n")
            KSR.hdr.append("X-Bottom: last\r\n")
        end
        if fwd == "ruri" then
            KSR.forward()
        else
            KSR.forward_uri(fwd)
        end
        KSR.x.exit()
    end
    local checks = KSR.pv.get("$hdr(X-Checks)")
    local ret
    if checks == nil then
        ret = KSR.sanity.sanity_check_defaults()
    else
        ret = KSR.sanity.sanity_check(tonumber(checks),
            tonumber(KSR.pv.get("$hdr(X-Uri-Checks)") or "7"))
    end
    if ret < 0 then
        if KSR.pv.get("$hdr(X-Reply)") == "yes" then
            KSR.sanity.sanity_reply()
        end
        KSR.x.exit()
    end
    if KSR.pv.get("$hdr(X-Log)") then
        KSR.xlog.xinfo("xlog: $rm from $si cseq $cs x-log $hdr(X-Log) avp $avp(none) $$ ci $ci\n")
        KSR.xlog.xlog("L_WARN", "xlog warn: $rU\n")
        KSR.xlog.xdbg("xlog dbg: not at debug=2\n")
    end
    if KSR.pv.get("$hdr(X-Log-Format)") then
        KSR.xlog.xnotice(KSR.pv.get("$hdr(X-Log-Format)"))
    end
    local pattern = KSR.pv.get("$hdr(X-Search)")
    if pattern then
        KSR.hdr.append_to_reply(string.format("X-Found: %d,%d,%d,%d,%d\r\n",
            KSR.textops.search(pattern), KSR.textops.search_body(pattern),
            KSR.textops.has_body(), KSR.textops.remove_hf("X-Search"),
            KSR.textops.remove_hf("X-Absent")))
    end
    if KSR.pv.get("$hdr(X-Pv-Test)") then
        KSR.pv.sets("$du", "sip:192.0.2.5:5070;transport=tcp")
        local out = {}
        for _, n in ipairs({"$ai", "$pu", "$pU", "$pd", "$pn", "$di", "$re", "$hdrc(Via)",
                            "$hdrc(X-Many)", "$hdrc(v)", "$hdrc(X-None)", "$dd", "$dp", "$dP",
                            "$T_branch_idx", "$fn", "$tn"}) do
            out[#out + 1] = tostring(KSR.pv.get(n))
        end
        KSR.hdr.append_to_reply("X-Pvs: " .. table.concat(out, "|") .. "\r\n")
        KSR.hdr.append_to_reply("X-Ts: " .. tostring(KSR.pv.get("$Ts")) .. "\r\n")
    end
    KSR.setsflag(4)
    KSR.hdr.append_to_reply(string.format("X-Core: %s,%s,%s,%s,%s,%s,%s,%s,%s,%s\r\n",
        tostring(KSR.is_TLS()), tostring(KSR.is_WS()), tostring(KSR.is_IPv4()),
        tostring(KSR.is_IPv6()), tostring(KSR.is_src_port(tonumber(KSR.pv.get("$sp")))),
        tostring(KSR.is_dst_port(tonumber(KSR.pv.get("$Rp")))), tostring(KSR.issflagset(4)),
        tostring(KSR.issflagset(5)), tostring(KSR.is_myself_suri()), tostring(KSR.get_debug())))
    KSR.hdr.append_to_reply("X-First-Hop: " .. KSR.siputils.is_first_hop() .. "\r\n")
    KSR.hdr.append_to_reply("X-Routes: " .. routes() .. "\r\n")
    KSR.sl.sl_send_reply(200, "Sane")
end

function mark_branch()
    KSR.hdr.append("X-Routes: " .. routes() .. "\r\n")
end

function note_reply()
    KSR.pv.sets("$avp(onreply)", routes() .. "/" .. KSR.tm.t_get_branch_index())
end

function answer_failure()
    KSR.tm.t_send_reply(599, "failure " .. routes() .. " onreply " ..
        tostring(KSR.pv.get("$avp(onreply)")) .. string.format(" status %d %d %d %d",
        KSR.tm.t_get_status_code(), KSR.tm.t_check_status("48[0-9]"),
        KSR.tm.t_check_status("^5"), KSR.tm.t_get_branch_index()) ..
        string.format(" replied %d %d %d %d", KSR.tm.t_branch_replied(), KSR.tm.t_any_timeout(),
        KSR.tm.t_grep_status(486), KSR.tm.t_grep_status(180)))
end
