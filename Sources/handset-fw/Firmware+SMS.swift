import BearerDriver
import HandsetCore

extension Firmware {
    /// +CMTI: read the stored message, hand it over, and delete it only once its whole message was handled.
    mutating func handleStored(_ index: Int) throws(ATError) {
        guard let sms = try driver.smsRead(index: index) else { return }
        handlePDU(sms.pduHex, index: index)
    }

    /// Queues everything left in storage for reading (at bring-up, after a full-storage warning or lost URCs):
    /// messages that arrived while the handset was off or busy are not lost. If it fails, the next tick tries again.
    mutating func catchUpStoredSMS() throws(ATError) {
        catchUpDue = true
        let list = try driver.smsList(status: 4)
        var n = 0
        var complete = true
        while let e = driver.smsListEntry(n, in: list) {
            n += 1
            // Parts already let go must not be read again as new ones.
            if deletes.contains(e.index) { continue }
            if !storedToRead.add(e.index) { complete = false; break }
        }
        catchUpDue = !complete
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
    }

    /// AT+CMGD for the first queued index, one per pass of the loop. An index the module calls empty
    /// (+CMS ERROR: 321) is done; any other failure leaves it queued (moved last, so one bad index cannot
    /// block the rest) and pauses deletes until the next tick.
    mutating func deleteOneStored() {
        let index = deletes[0]
        do throws(ATError) {
            try driver.smsDelete(index: index)
        } catch {
            if error != .cms(321) {
                modemError("SMS delete", error)
                deletes.remove(index)
                deletes.add(index)
                deletesPaused = true
                return
            }
        }
        deletes.remove(index)
    }

    func logReceive(_ r: KDReceiveResult) {
        switch r {
        case .accepted(let t): LogLine("fw: key-delegation accepted type ").append(t.rawValue).emit()
        case .rejected(let s): LogLine("fw: key-delegation rejected status ").append(s.rawValue).emit()
        }
    }

    /// Starts sending the outbox's head, by the carriage the policy picks: SMS first; after a failed SMS send
    /// the same sealed bytes go by UDP if the type allows it (docs/key-delegation.md §1). A sent message leaves
    /// the outbox when its job is done (Firmware+Work.swift), and the next one follows.
    mutating func flushOutbox() {
        outboxDue = !modemFree  // started from the loop once the modem is free
        while modemFree, let m = kd.outbox.peek() {
            switch kd.carriage.choose(m.type) {
            case .sms:
                if startSMS(m) { return }
                log("SMS send failed")
                let d = smsSendFailed(m)
                if d == .wait || d == .sms { return }  // try again on the next tick
            case .udp:
                _ = startKDDatagram(m)
                return  // on failure, try again on the next tick
            case .drop:
                _ = kd.outbox.pop()
                refuseSMSOnly(m)
            case .wait:
                return  // try again on the next tick
            }
        }
    }

    /// The SMS send of `m` (the outbox's head) failed: the policy decides; a message it drops leaves the outbox.
    mutating func smsSendFailed(_ m: KDOutgoing) -> KDCarriageDecision {
        let wasAvailable = kd.carriage.smsAvailable
        let d = kd.carriage.smsFailed(m.type, now: Self.nowSeconds())
        if wasAvailable && !kd.carriage.smsAvailable { log("SMS unavailable: key delegation falls back to UDP") }
        if d == .drop {
            _ = kd.outbox.pop()
            refuseSMSOnly(m)
        }
        return d
    }

    /// Starts the first part of `m` by SMS under a new concatenation reference.
    mutating func startSMS(_ m: KDOutgoing) -> Bool {
        var opts = SMSSubmitOptions()
        opts.destinationPort = KD.smsPort
        opts.sourcePort = KD.smsPort
        opts.widePorts = true
        opts.reference = smsReference
        opts.wideReference = true
        smsReference = smsReference == UInt16.max ? 1 : smsReference + 1
        guard let parts = m.bytes.withBytes({ SMSPDU.submitPartCount(dataCount: $0.count, options: opts) }) else {
            log("SMS encode failed")
            return false
        }
        smsOptions = opts
        return startSMSPart(m, part: 0, parts: parts)
    }

    /// Encodes part `part` and starts its AT+CMGS (the PDU is copied into the engine).
    mutating func startSMSPart(_ m: KDOutgoing, part: Int, parts: Int) -> Bool {
        let address = config.gatewayNumber.withBytes { g -> SMSAddress? in
            do throws(SMSPDUError) { return try SMSAddress(number: g) } catch { return nil }
        }
        guard let to = address else { return false }
        let opts = smsOptions
        var failure: ATError?
        let started = m.bytes.withBytes { data -> Bool in
            var hex = InlineArray<400, UInt8>(repeating: 0)
            var pdu = InlineArray<200, UInt8>(repeating: 0)
            let encoded = withUnsafeMutableBytes(of: &hex) { h in
                withUnsafeMutableBytes(of: &pdu) { b in Self.encodePart(to: to, data: data, part: part, options: opts, pdu: b, hex: h) }
            }
            guard let (hexCount, tpdu) = encoded else { return false }
            return withUnsafeBytes(of: hex) { h -> Bool in
                do throws(ATError) {
                    try driver.startSMSSend(pduHex: UnsafeRawBufferPointer(rebasing: h[0..<hexCount]), tpduLength: tpdu)
                    return true
                } catch {
                    failure = error
                    return false
                }
            }
        }
        if let failure { modemError("SMS send", failure) } else if !started { log("SMS encode failed") }
        if started { job = .smsPart(part: part, parts: parts) }
        return started
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
