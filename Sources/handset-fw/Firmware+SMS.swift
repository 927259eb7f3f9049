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
        let list = try driver.smsList(status: 4)
        var indexes = InlineArray<32, Int>(repeating: -1)
        var n = 0
        while n < 32, let e = driver.smsListEntry(n, in: list) { indexes[n] = e.index; n += 1 }
        for i in 0..<n { try handleStored(indexes[i]) }
        catchUpDue = false
    }

    /// One SMS as hex (from +CMGR or +CMT). `index` is its storage slot, nil when it was never stored.
    mutating func handlePDU(_ hex: UnsafeRawBufferPointer, index: Int?) {
        stats.smsIn &+= 1
        let now = Self.nowSeconds()
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
        let accepted = withUnsafeMutableBytes(of: &scratch) { b -> SMSReassemblyResult? in
            do throws(SMSReassemblyError) { return try reassembler.accept(msg, now: now, into: b) } catch { return nil }
        }
        guard let result = accepted else {
            deleteStored(index)
            return
        }
        switch result {
        case .pending:
            if let index, let ref = msg.header.concat?.reference { holdPart(index, reference: ref) }
        case .duplicate:
            deleteStored(index)
        case .complete(let whole):
            let r = withUnsafeBytes(of: &scratch) { b in
                kd.receive(UnsafeRawBufferPointer(rebasing: b[0..<whole.count]), now: now, plane: &plane)
            }
            logReceive(r)
            // Handled (accepted, or rejected for good): now the stored parts may go.
            deleteStored(index)
            if let ref = whole.reference { releaseParts(reference: ref) }
            afterKeyDelegation()
        }
    }

    func fromGateway(_ m: borrowing SMSMessage) -> Bool {
        let a = m.address
        var digits = 0
        return config.gatewayNumber.withBytes { g in
            // Compare digits only: the gateway may show up as national or international.
            var gi = g.count - 1, ai = a.count - 1
            while gi >= 0 && ai >= 0 {
                if g[gi] == 0x2B { gi -= 1; continue }
                if a[ai] == 0x2B { ai -= 1; continue }
                if g[gi] != a[ai] { return false }
                gi -= 1; ai -= 1; digits += 1
            }
            return digits >= 6 || (gi < 0 && ai < 0)
        }
    }

    mutating func holdPart(_ index: Int, reference: UInt16) {
        for i in 0..<16 where !heldParts[i].used {
            heldParts[i] = HeldPart(used: true, index: index, reference: reference)
            return
        }
    }

    mutating func releaseParts(reference: UInt16) {
        for i in 0..<16 where heldParts[i].used && heldParts[i].reference == reference {
            deleteStored(heldParts[i].index)
            heldParts[i].used = false
        }
    }

    func deleteStored(_ index: Int?) {
        guard let index else { return }
        try? driver.smsDelete(index: index)
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
                    } catch { return false }
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
