// SMS in PDU mode (TS 27.005 §3): the PDU codec lives in SMS/; here the PDUs travel as hex text.

extension ATDriver {
    /// `AT+CMGF=0` and `AT+CNMI` for the chosen indication; `AT+CPMS` is left as the module has it.
    public func smsConfigure(_ indication: SMSIndication) throws(ATError) {
        try engine.run("AT+CMGF=0")
        switch indication {
        case .store: try engine.run("AT+CNMI=2,1,0,0,0")
        case .direct: try engine.run("AT+CNMI=2,2,0,0,0")
        }
    }

    /// Sends one SMS-SUBMIT: `AT+CMGS=<tpduLength>`, the prompt, the PDU hex (SMSC field included)
    /// and Ctrl-Z. Returns the message reference. `+CMS ERROR` codes come back as `.cms(n)`.
    public func smsSend(pduHex: UnsafeRawBufferPointer, tpduLength: Int) throws(ATError) -> Int {
        try startSMSSend(pduHex: pduHex, tpduLength: tpduLength)
        return try Self.messageReference(engine.finishCommand())
    }

    /// `smsSend` without waiting (the network may take minutes): the PDU is copied, and `smsSendResult`
    /// gives the message reference once the module answered. Events keep coming from `nextEvent` meanwhile.
    public func startSMSSend(pduHex: UnsafeRawBufferPointer, tpduLength: Int) throws(ATError) {
        if tpduLength <= 0 || tpduLength > 175 || pduHex.count < 2 * tpduLength || pduHex.count % 2 != 0 {
            throw .invalidArgument
        }
        for b in pduHex where hexValue(b) == nil { throw .invalidArgument }
        var c = ATCommand("AT+CMGS=")
        c.int(tpduLength)
        try engine.start(c, timeoutMs: dialect.smsSendTimeoutMs, payload: .smsPDU(hex: pduHex))
    }

    /// The message reference once the send started by `startSMSSend` is answered; nil while it runs.
    public func smsSendResult() throws(ATError) -> Int? {
        guard let r = try engine.advance() else { return nil }
        return try Self.messageReference(r)
    }

    static func messageReference(_ r: ATResponse) throws(ATError) -> Int {
        guard var f = r.fields("+CMGS:"), let mr = f.int() else { throw .malformedResponse }
        return mr
    }

    /// `AT+CNMA`: acknowledges a `+CMT` delivery when the module runs phase 2+ (`AT+CSMS=1`).
    public func smsAcknowledge() throws(ATError) {
        try engine.run("AT+CNMA")
    }

    /// `AT+CMGR=<index>`; nil when the slot is empty.
    public func smsRead(index: Int) throws(ATError) -> StoredSMS? {
        var c = ATCommand("AT+CMGR=")
        c.int(index)
        let r = try engine.run(c, timeoutMs: 5000)
        guard let i = r.index(of: "+CMGR:"), let header = r.line(i) else { return nil }
        var f = ATFields(header, after: "+CMGR:")
        guard let stat = f.int() else { throw .malformedResponse }
        // `[<alpha>],<length>`: the length is the last field.
        var length: Int?
        while !f.isAtEnd, let v = f.next() { length = parseDecimal(v) }
        guard let length, let pdu = r.line(i + 1) else { throw .malformedResponse }
        return StoredSMS(index: index, status: stat, tpduLength: length, pduHex: pdu)
    }

    /// `AT+CMGD=<index>`: call only after the message has been consumed.
    public func smsDelete(index: Int) throws(ATError) {
        var c = ATCommand("AT+CMGD=")
        c.int(index)
        try engine.run(c, timeoutMs: 5000)
    }

    /// `AT+CMGL=<stat>` (4 = all). Iterate the result with `smsListEntry(_:in:)`.
    public func smsList(status: Int = 4) throws(ATError) -> ATResponse {
        var c = ATCommand("AT+CMGL=")
        c.int(status)
        return try engine.run(c, timeoutMs: 20_000)
    }

    /// The `n`th message of a `+CMGL` answer, or nil past the end.
    public func smsListEntry(_ n: Int, in list: ATResponse) -> StoredSMS? {
        var line = 0
        var seen = 0
        while let i = list.index(of: "+CMGL:", from: line) {
            if seen == n {
                guard let header = list.line(i), let pdu = list.line(i + 1) else { return nil }
                var f = ATFields(header, after: "+CMGL:")
                guard let index = f.int(), let stat = f.int() else { return nil }
                var length: Int?
                while !f.isAtEnd, let v = f.next() { length = parseDecimal(v) }
                guard let length else { return nil }
                return StoredSMS(index: index, status: stat, tpduLength: length, pduHex: pdu)
            }
            seen += 1
            line = i + 1
        }
        return nil
    }

    /// `AT+CPMS?`: used and total of the read/delete memory.
    public func smsStorage() throws(ATError) -> SMSStorageStatus {
        let r = try engine.run("AT+CPMS?")
        guard var f = r.fields("+CPMS:") else { throw .malformedResponse }
        f.skip()
        guard let used = f.int(), let total = f.int() else { throw .malformedResponse }
        return SMSStorageStatus(used: used, total: total)
    }
}

extension ATDriver {
    /// `AT+CSCA?`: copies the SMS service centre number (as text, e.g. `+447785016005`) into `out`.
    public func serviceCentre(into out: UnsafeMutableRawBufferPointer) throws(ATError) -> Int {
        let r = try engine.run("AT+CSCA?")
        guard var f = r.fields("+CSCA:"), let number = f.string() else { throw .malformedResponse }
        let n = min(number.count, out.count)
        for i in 0..<n { out[i] = number[i] }
        return n
    }
}
