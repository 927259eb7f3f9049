import BearerDriver
import HandsetCore

extension Firmware {
    /// +CMTI: read the stored message, hand it over, and delete it only once its whole message was handled.
    mutating func handleStored(_ index: Int) throws(ATError) {
        guard let sms = try driver.smsRead(index: index) else { return }
        handlePDU(sms.pduHex, index: index)
    }

    /// Handles everything left in storage (at bring-up, after a full-storage warning or lost URCs): messages
    /// that arrived while the handset was off or busy are not lost. If it fails, the next tick tries again.
    mutating func catchUpStoredSMS() throws(ATError) {
        catchUpDue = true
        // Parts already let go must not be read again as new ones.
        flushDeletes()
        let list = try driver.smsList(status: 4)
        var indexes = InlineArray<32, Int>(repeating: -1)
        var n = 0
        while n < 32, let e = driver.smsListEntry(n, in: list) { indexes[n] = e.index; n += 1 }
        for i in 0..<n where !deletes.contains(indexes[i]) { try handleStored(indexes[i]) }
        catchUpDue = false
    }

    /// One SMS as hex (from +CMGR or +CMT). `index` is its storage slot, nil when it was never stored.
    mutating func handlePDU(_ hex: UnsafeRawBufferPointer, index: Int?) {
        stats.smsIn &+= 1
        let now = Self.nowSeconds()
        // The module stored a new message here, so a delete still queued for this index already happened.
        if let index { deletes.remove(index) }
        let msg: SMSMessage
        do {
            msg = try SMSPDU.decode(hex: hex)
        } catch {
            log("undecodable SMS deleted")
            deleteStored(index)
            return
        }
        guard let ports = msg.header.ports, ports.destination == KD.smsPort, fromGateway(msg) else {
            stats.smsForeign &+= 1
            log("ordinary SMS (not for key delegation) deleted")
            deleteStored(index)
            return
        }
        // Every part the reassembler lets go (completed, duplicate, timed out, evicted) comes back as its
        // storage index and is queued for deletion; parts of a completed message go only after it was handled.
        let overflowsBefore = deletes.overflows
        let accepted = withUnsafeMutableBytes(of: &scratch) { b -> SMSReassemblyResult? in
            do throws(SMSReassemblyError) {
                return try reassembler.accept(msg, now: now, tag: index ?? -1, into: b) { deletes.add($0) }
            } catch {
                return nil
            }
        }
        guard let result = accepted else {
            deleteStored(index)
            return
        }
        if case .complete(let whole) = result {
            let r = withUnsafeBytes(of: &scratch) { b in
                kd.receive(UnsafeRawBufferPointer(rebasing: b[0..<whole.count]), now: now, plane: &plane)
            }
            logReceive(r)
        }
        noteDeleteOverflow(since: overflowsBefore)
        flushDeletes()
        if case .complete = result { afterKeyDelegation() }
    }

    /// Exact number match after normalisation (`SMSAddress.sameNumber`): a suffix match would take any
    /// number ending in the gateway's digits for the gateway.
    func fromGateway(_ m: borrowing SMSMessage) -> Bool {
        let a = m.address
        return config.gatewayNumber.withBytes { g in
            do throws(SMSPDUError) { return try SMSAddress(number: g).sameNumber(a) } catch { return false }
        }
    }

    /// Incomplete messages past the reassembly timeout give their stored parts back (called every tick).
    mutating func expireHeldParts(now: UInt64) {
        let overflowsBefore = deletes.overflows
        let n = reassembler.expire(now: now) { deletes.add($0) }
        if n > 0 { LogLine("fw: ").append(n).append(" incomplete SMS message(s) timed out; parts deleted").emit() }
        noteDeleteOverflow(since: overflowsBefore)
        if !deletes.isEmpty { flushDeletes() }
    }

    /// A full delete queue loses an index: a storage listing will meet the part again.
    mutating func noteDeleteOverflow(since before: UInt64) {
        guard deletes.overflows != before else { return }
        log("SMS delete queue full; listing stored SMS")
        catchUpDue = true
    }

    mutating func deleteStored(_ index: Int?) {
        guard let index else { return }
        let before = deletes.overflows
        deletes.add(index)
        noteDeleteOverflow(since: before)
        flushDeletes()
    }

    /// AT+CMGD for each queued index. An index the module calls empty (+CMS ERROR: 321) is done; any other
    /// failure leaves it queued (moved last, so one bad index cannot block the rest) until the next tick.
    mutating func flushDeletes() {
        var left = deletes.count
        while left > 0 && !deletes.isEmpty {
            left -= 1
            let index = deletes[0]
            do throws(ATError) {
                try driver.smsDelete(index: index)
            } catch {
                if error != .cms(321) {
                    modemError("SMS delete", error)
                    deletes.remove(index)
                    deletes.add(index)
                    return
                }
            }
            deletes.remove(index)
        }
    }

    func logReceive(_ r: KDReceiveResult) {
        switch r {
        case .accepted(let t): LogLine("fw: key-delegation accepted type ").append(t.rawValue).emit()
        case .rejected(let s): LogLine("fw: key-delegation rejected status ").append(s.rawValue).emit()
        }
    }

    /// Sends every queued key-delegation message, each by the carriage the policy picks: SMS first; after a
    /// failed SMS send the same sealed bytes go by UDP if the type allows it (docs/key-delegation.md §1).
    mutating func flushOutbox() {
        while let m = kd.outbox.peek() {
            var d = kd.carriage.choose(m.type)
            if d == .sms {
                if sendSMS(m) { _ = kd.outbox.pop(); continue }
                let wasAvailable = kd.carriage.smsAvailable
                d = kd.carriage.smsFailed(m.type, now: Self.nowSeconds())
                if wasAvailable && !kd.carriage.smsAvailable { log("SMS unavailable: key delegation falls back to UDP") }
            }
            switch d {
            case .udp:
                guard sendKDDatagram(m) else { return }  // try again on the next tick
                _ = kd.outbox.pop()
            case .drop:
                _ = kd.outbox.pop()
                refuseSMSOnly(m)
            case .sms, .wait:
                return  // try again on the next tick
            }
        }
    }

    mutating func sendSMS(_ m: KDOutgoing) -> Bool {
        var opts = SMSSubmitOptions()
        opts.destinationPort = KD.smsPort
        opts.sourcePort = KD.smsPort
        opts.widePorts = true
        opts.reference = smsReference
        opts.wideReference = true
        smsReference = smsReference == UInt16.max ? 1 : smsReference + 1
        let address = config.gatewayNumber.withBytes { g -> SMSAddress? in
            do throws(SMSPDUError) { return try SMSAddress(number: g) } catch { return nil }
        }
        guard let to = address else { return false }
        return m.bytes.withBytes { data -> Bool in
            guard let parts = SMSPDU.submitPartCount(dataCount: data.count, options: opts) else { return false }
            var hex = InlineArray<400, UInt8>(repeating: 0)
            for part in 0..<parts {
                var pdu = InlineArray<200, UInt8>(repeating: 0)
                let encoded = withUnsafeMutableBytes(of: &hex) { h in
                    withUnsafeMutableBytes(of: &pdu) { b in Self.encodePart(to: to, data: data, part: part, options: opts, pdu: b, hex: h) }
                }
                guard let (hexCount, tpdu) = encoded else { log("SMS encode failed"); return false }
                let sent = withUnsafeBytes(of: hex) { h -> Bool in
                    do throws(ATError) {
                        _ = try driver.smsSend(pduHex: UnsafeRawBufferPointer(rebasing: h[0..<hexCount]), tpduLength: tpdu)
                        return true
                    } catch {
                        modemError("SMS send", error)
                        return false
                    }
                }
                guard sent else { log("SMS send failed"); return false }
                stats.smsOut &+= 1
            }
            return true
        }
    }

    /// One SMS-SUBMIT part as AT+CMGS hex; returns the hex length and the TPDU length.
    static func encodePart(to: borrowing SMSAddress, data: UnsafeRawBufferPointer, part: Int, options: SMSSubmitOptions,
                           pdu: UnsafeMutableRawBufferPointer, hex: UnsafeMutableRawBufferPointer) -> (Int, Int)? {
        do throws(SMSPDUError) {
            let (octets, tpdu) = try SMSPDU.encodeSubmit(to: to, data: data, part: part, options: options, into: pdu)
            let n = try SMSHex.encode(UnsafeRawBufferPointer(rebasing: pdu[0..<octets]), into: hex)
            return (n, tpdu)
        } catch {
            return nil
        }
    }
}
