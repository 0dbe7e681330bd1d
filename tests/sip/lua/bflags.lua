-- Branch flags, for both proxies: an INVITE gets flags on its Request-URI
-- branch and on a branch appended to 127.0.0.1:@UAS_B_PORT@; each branch
-- route shows its branch's flags in X-Bf and sets flag 9; each onreply
-- route keeps the replying branch's flags in $avp(r<code>); the failure
-- route answers 599 with the failed branch's flags and those.

function ksr_request_route()
    if KSR.is_ACK() then
        KSR.tm.t_check_trans()
        KSR.x.exit()
    end
    KSR.setbflag(3)
    KSR.corex.append_branch_uri("sip:b@127.0.0.1:@UAS_B_PORT@")
    KSR.setbiflag(5, 1)
    KSR.setbflag(7)
    KSR.resetbiflag(3, 0)
    KSR.setbflag(3)
    KSR.tm.t_on_branch("mark")
    KSR.tm.t_on_reply("note")
    KSR.tm.t_on_failure("answer")
    KSR.tm.t_relay()
end

function mark()
    KSR.hdr.append(string.format("X-Bf: %s,%s,%s\r\n", tostring(KSR.pv.get("$bf")),
        tostring(KSR.isbflagset(5)), tostring(KSR.isbflagset(3))))
    KSR.setbflag(9)
end

function note()
    KSR.pv.seti("$avp(r" .. KSR.pv.get("$rs") .. ")", KSR.pv.get("$bf"))
end

function answer()
    KSR.tm.t_reply(599, string.format("bf=%s r486=%s r500=%s",
        tostring(KSR.pv.get("$bf")), tostring(KSR.pv.get("$avp(r486)")),
        tostring(KSR.pv.get("$avp(r500)"))))
end
