// SIM, signal, operator, registration and the packet bearer (TS 27.007 §7, §8, §10).

extension ATDriver {
    public func simState() throws(ATError) -> SIMState {
        do throws(ATError) {
            let r = try engine.run("AT+CPIN?", timeoutMs: 5000)
            guard var f = r.fields("+CPIN:"), let code = f.string() else { throw ATError.malformedResponse }
            return SIMState.parse(code)
        } catch {
            if error == .cme(10) { return .notInserted }  // TS 27.007 §9.2.1: SIM not inserted
            throw error
        }
    }

    public func signalQuality() throws(ATError) -> SignalQuality {
        let r = try engine.run("AT+CSQ", timeoutMs: 2000)
        guard var f = r.fields("+CSQ:"), let rssi = f.int(), let ber = f.int() else { throw .malformedResponse }
        return SignalQuality(rssi: rssi, ber: ber)
    }

    /// `+COPS?`; the name is empty when the module is not registered.
    public func currentOperator() throws(ATError) -> OperatorInfo {
        let r = try engine.run("AT+COPS?", timeoutMs: 5000)
        guard var f = r.fields("+COPS:"), let mode = f.int() else { throw .malformedResponse }
        let format = f.optionalInt()
        let name = f.string() ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let act = f.optionalInt()
        return OperatorInfo(mode: mode, format: format, name: name, accessTechnology: act)
    }

    /// Enables registration URCs with location (`n = 2`) for the domains the dialect supports.
    public func enableRegistrationEvents() throws(ATError) {
        try engine.run("AT+CREG=2")
        _ = try? engine.run("AT+CGREG=2")
        if dialect.asksCEREG { _ = try? engine.run("AT+CEREG=2") }
    }

    /// Reads the registration of one domain (read-answer form).
    public func registration(_ domain: RegistrationDomain) throws(ATError) -> NetworkRegistration {
        let r: ATResponse
        switch domain {
        case .circuit: r = try engine.run("AT+CREG?")
        case .packet: r = try engine.run("AT+CGREG?")
        case .eps: r = try engine.run("AT+CEREG?")
        }
        var i = 0
        while let line = r.line(i) {
            if let reg = NetworkRegistration.parse(line, readAnswer: true), reg.domain == domain { return reg }
            i += 1
        }
        throw .malformedResponse
    }

    /// `AT+CGDCONT=<cid>,"IP","<apn>"`, plus the dialect's own context set-up where it has one (`contextAPN`).
    public func defineContext(cid: Int = 1, apn: UnsafeRawBufferPointer) throws(ATError) {
        var c = ATCommand("AT+CGDCONT=")
        c.int(cid)
        c.quoted("IP")
        c.quoted(apn)
        try engine.run(c)
        apnCount = min(apn.count, 64)
        for i in 0..<apnCount { self.apn[i] = apn[i] }
        if let s = dialect.sockets, !s.contextAPN.isEmptyString {
            var q = ATCommand(s.contextAPN)
            q.int(cid)
            q.int(1)
            q.quoted(apn)
            try engine.run(q)
        }
    }

    /// GPRS/EPS attach (`AT+CGATT=1`); may take the network up to 75 s.
    public func attach(timeoutMs: Int = 75_000) throws(ATError) {
        try engine.run("AT+CGATT=1", timeoutMs: timeoutMs)
    }

    public func isAttached() throws(ATError) -> Bool {
        let r = try engine.run("AT+CGATT?")
        guard var f = r.fields("+CGATT:"), let v = f.int() else { throw .malformedResponse }
        return v == 1
    }

    /// Activates the data bearer the way the dialect does it (NETOPEN, QIACT, CGACT).
    public func activateBearer(cid: Int = 1, timeoutMs: Int = 150_000) throws(ATError) {
        guard let s = dialect.sockets else {
            var c = ATCommand("AT+CGACT=1,")
            c.int(cid)
            try engine.run(c, timeoutMs: timeoutMs)
            return
        }
        if !s.netReset.isEmptyString { _ = try? engine.run(ATCommand(s.netReset), timeoutMs: 65_000) }
        if !s.netPrepare.isEmptyString { _ = try? engine.run(ATCommand(s.netPrepare), timeoutMs: 2000) }
        if !s.netAPN.isEmptyString {
            var c = ATCommand(s.netAPN)
            let n = apnCount
            withUnsafeBytes(of: &apn) { c.quoted(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            try engine.run(c, timeoutMs: 2000)
        }
        try engine.run(ATCommand(s.netOpen), timeoutMs: timeoutMs)
        if !s.netAddress.isEmptyString { try engine.runAnsweredByOneLine(ATCommand(s.netAddress), timeoutMs: 2000) }
        if !s.netOpenURC.isEmptyString {
            let u = try engine.awaitURC(s.netOpenURC, timeoutMs: timeoutMs)
            var f = ATFields(u.line, after: s.netOpenURC)
            guard let err = f.int() else { throw .malformedResponse }
            if err != 0 { throw .socketError(err) }
        }
    }

    public func deactivateBearer(timeoutMs: Int = 40_000) throws(ATError) {
        guard let s = dialect.sockets else {
            try engine.run("AT+CGACT=0", timeoutMs: timeoutMs)
            return
        }
        try engine.run(ATCommand(s.netClose), timeoutMs: timeoutMs)
        for i in 0..<openSockets.count {
            openSockets[i] = false
            socketRemote[i] = nil
        }
    }
}
