// Engine behaviour over a scripted transport. Response shapes follow ITU-T V.250 §5.7 (result
// codes framed by CR LF), TS 27.007 §9.2 (+CME ERROR) and TS 27.005 §3.2.5, §3.5.1 (+CMS ERROR, > prompt).
import Testing
@testable import BearerDriver

@Suite struct ATEngineTests {
    struct FinalCase: Sendable, CustomStringConvertible {
        let wire: String
        let error: ATError?
        var description: String { wire }
    }

    static let finals: [FinalCase] = [
        FinalCase(wire: "OK", error: nil),
        FinalCase(wire: "ERROR", error: .error),
        FinalCase(wire: "+CME ERROR: 10", error: .cme(10)),
        FinalCase(wire: "+CMS ERROR: 322", error: .cms(322)),
        FinalCase(wire: "+CME ERROR: SIM not inserted", error: .cme(-1)),
        FinalCase(wire: "NO CARRIER", error: .noCarrier),
        FinalCase(wire: "BUSY", error: .busy),
        FinalCase(wire: "NO ANSWER", error: .noAnswer),
        FinalCase(wire: "NO DIALTONE", error: .noDialtone),
        FinalCase(wire: "SEND FAIL", error: .sendFailed),
    ]

    @Test(arguments: finals)
    func finalResultCodes(_ c: FinalCase) throws {
        let e = makeEngine([step("AT+X", "\r\n\(c.wire)\r\n")])
        do {
            try e.run("AT+X")
            #expect(c.error == nil)
        } catch {
            #expect(error == c.error)
        }
        #expect(e.transport.finished)
        #expect(e.pendingURCs == 0)
    }

    @Test(arguments: [false, true])
    func echoOnOrOffGivesTheSameAnswer(echo: Bool) throws {
        let prefix = echo ? "AT+CSQ\r" : ""
        let e = makeEngine([step("AT+CSQ", prefix + "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CSQ")
        #expect(r.count == 1)
        #expect(r.line(0)?.text == "+CSQ: 20,99")
        #expect(e.stats.echoes == (echo ? 1 : 0))
    }

    @Test func urcBetweenAnswerAndFinalResultIsQueuedNotLost() throws {
        let e = makeEngine([step("AT+CSQ", "\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",3\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CSQ")
        #expect(r.count == 1)
        #expect(r.line(0)?.text == "+CSQ: 20,99")
        let u = try #require(e.nextURC())
        #expect(u.line.text == "+CMTI: \"SM\",3")
        #expect(e.nextURC()?.line.text == nil)
    }

    @Test func urcBeforeTheAnswerAndDuringEchoIsQueued() throws {
        let e = makeEngine([step("AT+CSQ", "AT+CSQ\r\r\n+CREG: 5\r\n\r\n+CSQ: 7,0\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CSQ")
        #expect(r.count == 1)
        #expect(e.nextURC()?.line.text == "+CREG: 5")
    }

    @Test func answerWithAURCPrefixBelongsToTheCommand() throws {
        // +CREG is a URC prefix, but it is also the answer to AT+CREG?.
        let e = makeEngine([step("AT+CREG?", "\r\n+CREG: 2,1,\"00C3\",\"0000A1B2\",7\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CREG?")
        #expect(r.line(0)?.text == "+CREG: 2,1,\"00C3\",\"0000A1B2\",7")
        #expect(e.pendingURCs == 0)
    }

    @Test func twoLineCMTInsideAResponseKeepsItsPDU() throws {
        let pdu = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
        let e = makeEngine([step("AT+CPMS?", "\r\n+CMT: ,24\r\n\(pdu)\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CPMS?")
        #expect(r.count == 1)
        let u = try #require(e.nextURC())
        #expect(u.line.text == "+CMT: ,24")
        #expect(u.body.text == pdu)
    }

    @Test func garbageBeforeAFinalResultIsDroppedAndCounted() throws {
        let e = makeEngine([ScriptStep(expect: bytes("AT\r"), reply: [0xFF, 0xFE, 0x00, 0x4F, 0x4B, 0x0D, 0x0A])])
        try e.run("AT")
        #expect(e.stats.garbageBytes == 3)
    }

    @Test func wrongBaudNoiseThenRecovery() throws {
        // Noise at the wrong rate: printable junk and high bytes, no terminator until the end.
        var noise: [UInt8] = [0xE0, 0x78, 0x80, 0xF8, 0x00, 0x66, 0x7E, 0x9F]
        noise += bytes("\r\n")
        let e = makeEngine([ScriptStep(expect: bytes("AT\r"), reply: noise + bytes("\r\nOK\r\n"))])
        try e.run("AT")
        #expect(e.stats.garbageBytes >= 4)
        #expect(e.pendingURCs == 0)
    }

    @Test func overlongLineIsDroppedWholeAndTheEngineResynchronises() throws {
        let long = String(repeating: "A", count: 100)
        let e = makeEngine([step("AT+X", "\r\n+X: \(long)\r\n+X: short\r\n\r\nOK\r\n")], lineCapacity: 32)
        let r = try e.run("AT+X")
        #expect(e.stats.lineOverruns == 1)
        #expect(r.count == 1)
        #expect(r.line(0)?.text == "+X: short")
    }

    @Test func missingFinalResultTimesOutAndTheNextCommandStillWorks() throws {
        let e = makeEngine([step("AT+CSQ", "\r\n+CSQ: 20,99\r\n"), step("AT", "\r\nOK\r\n")])
        #expect(throws: ATError.timeout) { try e.run("AT+CSQ", timeoutMs: 300) }
        #expect(e.stats.timeouts == 1)
        #expect(e.transport.nowMs() >= 1_300)
        try e.run("AT")
        #expect(e.transport.finished)
    }

    @Test func lateFinalResultAfterATimeoutIsCountedAsStray() throws {
        var t = ScriptedTransport([step("AT+COPS=?", ""), step("AT", "\r\nOK\r\n")])
        t.timed = [(at: 1_500, bytes: bytes("\r\nOK\r\n"))]
        let e = ATEngine(transport: t, rules: ModemDialect.generic.rules)
        #expect(throws: ATError.timeout) { try e.run("AT+COPS=?", timeoutMs: 100) }
        try e.poll(timeoutMs: 1_000)
        #expect(e.stats.strayLines == 1)
        try e.run("AT")
    }

    @Test(arguments: ["\r\n> ", "\r\n>"])
    func smsPromptWithOrWithoutSpace(prompt: String) throws {
        let hex = bytes("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
        let e = makeEngine([step("AT+CMGS=23", prompt), payloadStep(hex + [0x1A], "\r\n+CMGS: 42\r\n\r\nOK\r\n")])
        var c = ATCommand("AT+CMGS=")
        c.int(23)
        let r = try hex.withUnsafeBytes { p in try e.run(c, payload: .smsPDU(hex: p)) }
        #expect(r.line(0)?.text == "+CMGS: 42")
        #expect(e.transport.finished)
    }

    @Test func binaryPayloadAfterAtPromptIsSentVerbatim() throws {
        // u-blox binary syntax: "@" prompt, wait 50 ms, then exactly <length> bytes (SARA-R4 manual §USOST).
        let payload: [UInt8] = [0x00, 0x0D, 0x0A, 0x1A, 0x22, 0x2C, 0xFF, 0x40]
        let e = makeEngine([step("AT+USOST=0,\"10.0.0.1\",4500,8", "\r\n@"),
                            payloadStep(payload, "\r\n+USOST: 0,8\r\n\r\nOK\r\n")])
        var c = ATCommand("AT+USOST=")
        c.int(0); c.quoted(ipv4: 0x0A00_0001); c.int(4500); c.int(8)
        _ = try payload.withUnsafeBytes { p in try e.run(c, payload: ATPayload(bytes: p, prompt: 0x40, delayMs: 50)) }
        #expect(e.transport.finished)
        #expect(e.transport.paused == 50)
    }

    @Test func errorInsteadOfPromptEndsTheCommand() throws {
        let e = makeEngine([step("AT+CMGS=10", "\r\n+CMS ERROR: 322\r\n")])
        var c = ATCommand("AT+CMGS=")
        c.int(10)
        #expect(throws: ATError.cms(322)) {
            try bytes("00").withUnsafeBytes { p in try e.run(c, payload: .smsPDU(hex: p)) }
        }
        #expect(!e.transport.written.contains(0x1A))
    }

    @Test func missingPromptTimesOutAndEscapesInputMode() throws {
        let e = makeEngine([step("AT+CMGS=10", "")])
        var c = ATCommand("AT+CMGS=")
        c.int(10)
        #expect(throws: ATError.timeout) {
            try bytes("00").withUnsafeBytes { p in try e.run(c, timeoutMs: 200, payload: .smsPDU(hex: p)) }
        }
        #expect(e.transport.written.last == 0x1B)
    }

    @Test(arguments: ["RDY", "APP RDY", "SMS Ready", "+CPIN: READY"])
    func rebootInTheMiddleOfACommandIsReported(_ banner: String) throws {
        let e = makeEngine([step("AT+COPS?", "\r\n\(banner)\r\n")])
        #expect(throws: ATError.rebooted) { try e.run("AT+COPS?") }
        #expect(e.takeRebootIndication())
        #expect(!e.takeRebootIndication())
        #expect(e.stats.reboots == 1)
    }

    @Test func cpinReadyAsAnAnswerIsNotAReboot() throws {
        let e = makeEngine([step("AT+CPIN?", "\r\n+CPIN: READY\r\n\r\nOK\r\n")])
        let r = try e.run("AT+CPIN?")
        #expect(r.line(0)?.text == "+CPIN: READY")
        #expect(!e.takeRebootIndication())
    }

    @Test func fullURCQueueCountsOverflowAndKeepsTheOldest() throws {
        var flood = ""
        for i in 0..<6 { flood += "\r\n+CMTI: \"SM\",\(i)\r\n" }
        let e = makeEngine([step("AT", flood + "\r\nOK\r\n")], urcSlots: 4)
        try e.run("AT")
        #expect(e.stats.urcOverflows == 2)
        for i in 0..<4 { #expect(e.nextURC()?.line.text == "+CMTI: \"SM\",\(i)") }
        #expect(e.nextURC()?.line.text == nil)
    }

    @Test func rawSocketDataWithCRLFInsideIsTakenByLength() throws {
        let rules = ModemDialect.simcom.rules
        var reply = bytes("\r\nRECV FROM:10.0.0.2:4500\r\n+IPD6\r\n")
        reply += [0x0D, 0x0A, 0x4F, 0x4B, 0x0D, 0x0A]  // the data itself looks like "\r\nOK\r\n"
        reply += bytes("\r\n")
        var t = ScriptedTransport()
        t.timed = [(at: 1_010, bytes: reply)]
        let e = ATEngine(transport: t, rules: rules)
        // poll stops at each whole URC (back-pressure): the next is read once this one was taken.
        try e.poll(timeoutMs: 100)
        #expect(e.nextURC()?.line.text == "RECV FROM:10.0.0.2:4500")
        try e.poll(timeoutMs: 100)
        let data = try #require(e.nextURC())
        #expect(data.line.text == "+IPD6")
        #expect(Array(data.body) == [0x0D, 0x0A, 0x4F, 0x4B, 0x0D, 0x0A])
        #expect(e.stats.strayLines == 0)
    }

    @Test func rawResponseDataIsItsOwnRecord() throws {
        let data: [UInt8] = [0x45, 0x00, 0x0D, 0x0A, 0x4F, 0x4B]
        let reply = bytes("\r\n+QIRD: 6,\"10.0.0.2\",4500\r\n") + data + bytes("\r\n\r\nOK\r\n")
        let e = makeEngine([ScriptStep(expect: bytes("AT+QIRD=0\r"), reply: reply)], rules: ModemDialect.quectel.rules)
        var c = ATCommand("AT+QIRD=")
        c.int(0)
        let r = try e.run(c)
        #expect(r.count == 2)
        #expect(Array(try #require(r.line(1))) == data)
    }

    @Test func linesSplitAcrossOneByteReads() throws {
        var t = ScriptedTransport([step("AT+CSQ", "\r\n+CSQ: 31,0\r\n\r\n+CREG: 1\r\n\r\nOK\r\n")])
        t.chunk = 1
        let e = ATEngine(transport: t, rules: ModemDialect.generic.rules)
        let r = try e.run("AT+CSQ")
        #expect(r.line(0)?.text == "+CSQ: 31,0")
        #expect(e.nextURC()?.line.text == "+CREG: 1")
    }

    @Test func invalidCommandIsRefusedAndNothingIsWritten() throws {
        let e = makeEngine([])
        var c = ATCommand("AT+CGDCONT=")
        c.int(1)
        c.quoted("bad\"apn")
        #expect(throws: ATError.commandInvalid) { try e.run(c) }
        #expect(e.transport.written.isEmpty)
    }

    @Test func unknownUnsolicitedLineIsCountedNotQueued() throws {
        var t = ScriptedTransport()
        t.timed = [(at: 1_001, bytes: bytes("\r\n+WHATEVER: 1\r\n\r\n+CREG: 1\r\n"))]
        let e = ATEngine(transport: t, rules: ModemDialect.generic.rules)
        try e.poll(timeoutMs: 50)
        #expect(e.stats.strayLines == 1)
        #expect(e.nextURC()?.line.text == "+CREG: 1")
    }

    @Test func deviceThatStaysReadableButEmptyIsAHangUp() {
        struct DeadDevice: ByteTransport {
            var clock: UInt64 = 0
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> Int { 0 }
            mutating func write(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int) throws(SerialError) {}
            mutating func waitReadable(timeoutMs: Int) throws(SerialError) -> Bool { true }
            func nowMs() -> UInt64 { clock }
        }
        let e = ATEngine(transport: DeadDevice(), rules: ModemDialect.generic.rules)
        #expect(throws: ATError.transport(SerialError(kind: .hangUp, errno: 5))) { try e.run("AT", timeoutMs: 1000) }
    }

    @Test func resynchroniseForgetsHalfLinesAndQueuedURCs() throws {
        var t = ScriptedTransport([step("AT", "\r\nOK\r\n")])
        t.timed = [(at: 1_001, bytes: bytes("\r\n+CMTI: \"SM\",1\r\n+CMT: ,24\r\n"))]
        let e = ATEngine(transport: t, rules: ModemDialect.generic.rules)
        try e.poll(timeoutMs: 10)
        #expect(e.pendingURCs == 1)
        e.resynchronise()
        #expect(e.pendingURCs == 0)
        try e.run("AT")  // the PDU line the +CMT was waiting for never comes; OK must still end the command
        #expect(e.transport.finished)
    }

    @Test func cmtWhosePDULineIsLostDoesNotSwallowTheNextFinalResult() throws {
        let e = makeEngine([step("AT+CSQ", "\r\n+CMT: ,24\r\nOK\r\n")])
        let r = try e.run("AT+CSQ", timeoutMs: 500)
        #expect(r.count == 0)
        #expect(e.stats.missingBodies == 1)
        let u = try #require(e.nextURC())
        #expect(u.line.text == "+CMT: ,24")
        #expect(u.body.count == 0)
    }
}
