-- Proxy benchmark routing (KEMI names): the same work as the request_route
-- of kamailio.cfg. Kamailio's app_lua runs it unchanged. bench/dialog runs
-- it with the dialog module loaded.

-- set when the configuration loads ims_dialog (bench/dialog)
local dlg = KSR.ims_dialog

function ksr_request_route()
	-- RFC 3261 16.3: no more hops
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		return
	end

	-- CANCEL: relayed to the branches of the INVITE it cancels
	if KSR.is_CANCEL() then
		if KSR.tm.t_check_trans() > 0 then
			KSR.tm.t_relay()
		end
		return
	end

	-- requests inside a dialog follow its route set
	if KSR.siputils.has_totag() > 0 then
		if KSR.rr.loose_route() > 0 then
			relay()
			return
		end
		if KSR.is_ACK() then
			-- the ACK of a negative reply stops here, hop by hop
			if KSR.tm.t_check_trans() > 0 then
				KSR.tm.t_relay()
			end
			return
		end
		KSR.sl.sl_send_reply(404, "Not here")
		return
	end

	-- retransmissions are absorbed by the transaction layer
	if KSR.tm.t_check_trans() == 0 then
		return
	end

	-- stay on the path of the dialog
	if KSR.is_method_in("IS") then
		KSR.rr.record_route()
	end
	-- with the dialog module (bench/dialog): every call is tracked, in a
	-- profile per caller and in one counting all calls
	if dlg and KSR.is_INVITE() then
		dlg.dlg_manage()
		dlg.set_dlg_profile("caller", KSR.pv.get("$fU"))
		dlg.set_dlg_profile("total")
	end
	relay()
end

function relay()
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_send_reply(500, "Relay Failed")
	end
	KSR.x.exit()
end
