/// The modem driver: an AT engine plus the dialect that tells it which commands and URCs the module
/// speaks. Operations are synchronous and bounded by per-command timeouts; URCs are turned into
/// typed `ATEvent`s by `nextEvent`. Views returned are valid until the next call on the driver.
public final class ATDriver<Transport: ByteTransport> {
    public let engine: ATEngine<Transport>
    public private(set) var dialect: ModemDialect
    /// Sockets this driver opened and the network has not closed.
    var openSockets = InlineArray<16, Bool>(repeating: false)
    /// Sender announced by SIMCom's `RECV FROM:` for the `+IPD` that follows.
    var pendingSender: UDPEndpoint?
    /// Where each socket's datagrams go now, for modules that keep one destination per socket (SIM800).
    var socketRemote = InlineArray<16, UDPEndpoint?>(repeating: nil)
    /// The APN `defineContext` was given, for modules that take it again at each bearer start (SIM800 AT+CSTT).
    var apn = InlineArray<64, UInt8>(repeating: 0)
    var apnCount = 0
    var seenOverflows = 0
    /// Scratch for decoded socket data (u-blox hex) and identity lines; allocated once.
    let scratch: UnsafeMutableRawBufferPointer

    public init(transport: Transport, dialect: ModemDialect = .generic, lineCapacity: Int = 600,
                responseCapacity: Int = 4096, urcSlots: Int = 8, urcSlotCapacity: Int = 1600) {
        self.dialect = dialect
        engine = ATEngine(transport: transport, lineCapacity: lineCapacity, responseCapacity: responseCapacity,
                          urcSlots: urcSlots, urcSlotCapacity: urcSlotCapacity, rules: dialect.rules)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    }

    deinit { scratch.deallocate() }

    public func use(_ d: ModemDialect) {
        dialect = d
        engine.rules = d.rules
    }

    /// Brings the module to a known state: `synchronise`, then SMS in PDU mode with the given new-message
    /// indication (`configureSMS`), started over while boot banners interrupt it (see `synchronise`).
    public func start(autodetect: Bool = true, smsIndication: SMSIndication = .store,
                      bootTimeMs: Int = 20_000) throws(ATError) {
        try whileBooting(bootTimeMs) { () throws(ATError) in
            try synchroniseOnce(autodetect: autodetect)
            try configureSMS(smsIndication)
        }
    }

    /// Syncs on `AT`, turns echo off and numeric errors on, detects the dialect from AT+CGMM / ATI when
    /// `autodetect`, and runs the dialect's set-up. Needs no SIM: a SIM waiting for its PIN is dealt with after
    /// this (ATDriver+SIM.swift), before `configureSMS`.
    ///
    /// A booting module prints banners (RDY, +CPIN: READY, SMS DONE, ...), and each one ends the command waiting
    /// for its answer as `.rebooted`. Within `bootTimeMs` (default 20 s: the vendors' hardware manuals give about
    /// 6 s to UART ready and 10 s to USB after power-on) that starts the sequence over instead of failing it, so
    /// any number of banners within the boot time is survived. Only three `AT`s that met silence or an error
    /// fail it (the second after ending a stale SMS prompt, the third after completing a stale socket send).
    public func synchronise(autodetect: Bool = true, bootTimeMs: Int = 20_000) throws(ATError) {
        try whileBooting(bootTimeMs) { () throws(ATError) in try synchroniseOnce(autodetect: autodetect) }
    }

    /// Runs `steps` again each time a ready indication cuts it short, until `bootTimeMs` has passed.
    func whileBooting(_ bootTimeMs: Int, _ steps: () throws(ATError) -> Void) throws(ATError) {
        let bootDeadline = engine.transport.nowMs() + UInt64(max(bootTimeMs, 0))
        while true {
            do throws(ATError) {
                return try steps()
            } catch {
                guard error == .rebooted, engine.transport.nowMs() < bootDeadline else { throw error }
            }
        }
    }

    private func synchroniseOnce(autodetect: Bool) throws(ATError) {
        var failedTries = 0
        while true {
            do throws(ATError) {
                try engine.run("AT", timeoutMs: 1000)
                break
            } catch {
                if case .transport = error { throw error }
                if error == .rebooted { throw error }
                failedTries += 1
                if failedTries == 3 { throw .timeout }
                if failedTries == 1 { try endPrompt() }
                if failedTries == 2 { try completePendingSend() }
            }
        }
        try engine.run("ATE0", timeoutMs: 1000)
        do throws(ATError) { try engine.run("AT+CMEE=1", timeoutMs: 1000) } catch {
            if error == .rebooted { throw error }
        }
        if autodetect { use(try identify()) }
        for i in 0..<dialect.setupCount {
            do throws(ATError) { try engine.run(ATCommand(dialect.setupCommand(i)), timeoutMs: 2000) } catch {
                if error == .rebooted { throw error }
            }
        }
        _ = engine.takeRebootIndication()
    }

    /// SMS in PDU mode with the given new-message indication; the banners seen so far are not a reboot.
    public func configureSMS(_ smsIndication: SMSIndication = .store) throws(ATError) {
        try smsConfigure(smsIndication)
        _ = engine.takeRebootIndication()
    }

    /// A host that restarted may have left the module at the SMS prompt, where it takes every "AT" as PDU
    /// text: ESC ends the prompt without sending (TS 27.005 §3.5.1). In command mode the lone ESC line is
    /// ignored or answered ERROR; either answer is drained here as a stray line.
    func endPrompt() throws(ATError) {
        try engine.write(byte: ASCII.esc)
        try engine.write(byte: ASCII.cr)
        try engine.drain(timeoutMs: 100)
    }

    /// The longest payload any supported dialect accepts after a socket-send prompt (SIMCom's 1500).
    static var longestSocketPayload: Int { 1500 }

    /// A host that died between `AT+CIPSEND=<id>,<n>` (QISEND, USOST) and its payload leaves the module
    /// counting n raw bytes, ESC included, and there is no escape from a fixed-length send. Carriage returns
    /// complete it: the few that land in the datagram make it garbage to any ESP peer (SPI 0x0D0D0D0D is
    /// never assigned), the rest are empty command lines, which V.250 modules ignore.
    func completePendingSend() throws(ATError) {
        var filler = InlineArray<100, UInt8>(repeating: ASCII.cr)
        for _ in 0..<(Self.longestSocketPayload / 100) {
            try withUnsafeBytes(of: &filler) { b throws(ATError) in try engine.write(b) }
        }
        // Drain the send's answer whole, so it is not taken for AT's.
        try engine.drain(timeoutMs: 300)
    }

    /// Reads AT+CGMM (then ATI) and maps the answer to a dialect.
    public func identify() throws(ATError) -> ModemDialect {
        if let r = try? engine.run("AT+CGMM", timeoutMs: 2000), let line = r.firstPlainLine {
            let d = ModemDialect.detect(line)
            if d.vendor != .generic { return d }
        }
        let r = try engine.run("ATI", timeoutMs: 2000)
        var i = 0
        while let line = r.line(i) {
            let d = ModemDialect.detect(line)
            if d.vendor != .generic { return d }
            i += 1
        }
        return .generic
    }

    /// Copies an identity answer (AT+CGMI, AT+CGMM, AT+CGMR, AT+CGSN, AT+CIMI) into `out`; returns its length.
    public func identity(_ command: StaticString, into out: UnsafeMutableRawBufferPointer) throws(ATError) -> Int {
        let r = try engine.run(ATCommand(command), timeoutMs: 2000)
        guard var line = r.firstPlainLine ?? r.line(0) else { throw .malformedResponse }
        // Some modules prefix the answer with the command name ("+CGSN: 8675...").
        if line.count > 0 && line[0] == ASCII.plus, let colon = line.firstIndex(of: ASCII.colon) {
            line = line.suffix(from: colon + 1)
            while line.count > 0 && line[0] == ASCII.space { line = line.suffix(from: 1) }
        }
        let n = min(line.count, out.count)
        for k in 0..<n { out[k] = line[k] }
        return n
    }
}

/// How new SMS are indicated (AT+CNMI, TS 27.005 §3.4.1).
public enum SMSIndication: Sendable {
    /// Stored and announced with `+CMTI` (CNMI=2,1): survives a crash before the message is consumed.
    case store
    /// Routed straight to us with `+CMT` (CNMI=2,2).
    case direct
}
