// Driver start-up, SIM, signal, operator and registration. Line forms from TS 27.007 §7.2 (+CREG),
// §10.1.20 (+CGREG), §10.1.22 (+CEREG), §8.3 (+CPIN), §8.5 (+CSQ), §7.3 (+COPS).
import Testing
@testable import BearerDriver

func makeDriver(_ steps: [ScriptStep], dialect: ModemDialect = .generic) -> ATDriver<ScriptedTransport> {
    ATDriver(transport: ScriptedTransport(steps), dialect: dialect)
}

@Suite struct ATDriverNetworkTests {
    struct RegCase: Sendable, CustomStringConvertible {
        let line: String
        let read: Bool
        let status: RegistrationStatus?
        var area: UInt32? = nil
        var cell: UInt32? = nil
        var act: Int? = nil
        var description: String { line }
    }

    static let registrations: [RegCase] = [
        RegCase(line: "+CREG: 0,1", read: true, status: .home),
        RegCase(line: "+CREG: 2,5,\"00C3\",\"0000A1B2\",7", read: true, status: .roaming, area: 0xC3, cell: 0xA1B2, act: 7),
        RegCase(line: "+CREG: 1", read: false, status: .home),
        RegCase(line: "+CREG: 1,\"00C3\",\"0000A1B2\",0", read: false, status: .home, area: 0xC3, cell: 0xA1B2, act: 0),
        RegCase(line: "+CGREG: 2,2", read: true, status: .searching),
        RegCase(line: "+CEREG: 3", read: false, status: .denied),
        RegCase(line: "+CEREG: 1,\"1A2B\",\"01C3D4E5\",7", read: false, status: .home, area: 0x1A2B, cell: 0x01C3_D4E5, act: 7),
        // A URC that crossed AT+CREG? has one field and is read in URC form.
        RegCase(line: "+CREG: 5", read: true, status: .roaming),
        RegCase(line: "+CREG: 2,11", read: true, status: nil),
        RegCase(line: "+CREG: x", read: false, status: nil),
        RegCase(line: "+CREG: 1,\"zz\",\"1\"", read: false, status: nil),
        RegCase(line: "+COPS: 0", read: false, status: nil),
    ]

    @Test(arguments: registrations)
    func registrationForms(_ c: RegCase) {
        bytes(c.line).withUnsafeBytes { line in
            let r = NetworkRegistration.parse(line, readAnswer: c.read)
            #expect(r?.status == c.status)
            if c.status != nil {
                #expect(r?.area == c.area)
                #expect(r?.cell == c.cell)
                #expect(r?.accessTechnology == c.act)
            }
        }
    }

    @Test func startSyncsDisablesEchoDetectsAndConfiguresSMS() throws {
        let d = makeDriver([
            step("AT", "AT\r\r\nOK\r\n"),
            step("ATE0", "ATE0\r\r\nOK\r\n"),
            step("AT+CMEE=1", "\r\nOK\r\n"),
            step("AT+CGMM", "\r\nSIMCOM_SIM7600E-H\r\n\r\nOK\r\n"),
            step("AT+CIPSRIP=1", "\r\nOK\r\n"),
            step("AT+CIPHEAD=1", "\r\nERROR\r\n"),  // tolerated: set-up is best effort
            step("AT+CMGF=0", "\r\nOK\r\n"),
            step("AT+CNMI=2,1,0,0,0", "\r\nOK\r\n"),
        ])
        try d.start()
        #expect(d.dialect.vendor == .simcom)
        #expect(d.engine.transport.finished)
    }

    @Test func startFallsBackToATIAndGeneric() throws {
        let d = makeDriver([
            step("AT", "\r\nOK\r\n"), step("ATE0", "\r\nOK\r\n"), step("AT+CMEE=1", "\r\nOK\r\n"),
            step("AT+CGMM", "\r\nERROR\r\n"),
            step("ATI", "\r\nAcme Radio\r\nRevision: 1.0\r\n\r\nOK\r\n"),
            step("AT+CMGF=0", "\r\nOK\r\n"), step("AT+CNMI=2,2,0,0,0", "\r\nOK\r\n"),
        ], dialect: .quectel)
        try d.start(smsIndication: .direct)
        #expect(d.dialect.vendor == .generic)
        #expect(d.engine.transport.finished)
    }

    @Test func startGivesUpAfterThreeSilentTries() {
        let d = makeDriver([])
        #expect(throws: ATError.timeout) { try d.start() }
        #expect(d.engine.stats.timeouts == 3)
    }

    @Test func simSignalOperator() throws {
        let d = makeDriver([
            step("AT+CPIN?", "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"),
            step("AT+CPIN?", "\r\n+CME ERROR: 10\r\n"),
            step("AT+CSQ", "\r\n+CSQ: 21,99\r\n\r\nOK\r\n"),
            step("AT+COPS?", "\r\n+COPS: 0,0,\"Test, Net\",7\r\n\r\nOK\r\n"),
            step("AT+COPS?", "\r\n+COPS: 2\r\n\r\nOK\r\n"),
        ])
        #expect(try d.simState() == .pinRequired)
        #expect(try d.simState() == .notInserted)
        let q = try d.signalQuality()
        #expect(q == SignalQuality(rssi: 21, ber: 99))
        #expect(q.dBm == -71)
        let op = try d.currentOperator()
        #expect(op.name.text == "Test, Net")
        #expect(op.accessTechnology == 7)
        let none = try d.currentOperator()
        #expect(none.mode == 2)
        #expect(none.name.count == 0)
    }

    @Test func registrationReadAnswerSkipsACrossingURC() throws {
        let d = makeDriver([step("AT+CEREG?", "\r\n+CEREG: 2,5,\"1A2B\",\"01C3D4E5\",7\r\n\r\nOK\r\n")])
        let r = try d.registration(.eps)
        #expect(r.status == .roaming)
        #expect(r.status.isRegistered)
        #expect(r.area == 0x1A2B)
    }

    @Test func malformedCSQIsATypedError() {
        let d = makeDriver([step("AT+CSQ", "\r\n+CSQ: 21\r\n\r\nOK\r\n")])
        #expect(throws: ATError.malformedResponse) { try d.signalQuality() }
    }

    @Test func bearerOnSIMComWaitsForNetopenResult() throws {
        let d = makeDriver([
            step("AT+CGDCONT=1,\"IP\",\"internet\"", "\r\nOK\r\n"),
            step("AT+NETOPEN", "\r\nOK\r\n\r\n+NETOPEN: 0\r\n"),
        ], dialect: .simcom)
        try bytes("internet").withUnsafeBytes { try d.defineContext(apn: $0) }
        try d.activateBearer()
        #expect(d.engine.transport.finished)
    }

    @Test func bearerOnQuectelSetsQICSGPAndQIACT() throws {
        let d = makeDriver([
            step("AT+CGDCONT=1,\"IP\",\"internet\"", "\r\nOK\r\n"),
            step("AT+QICSGP=1,1,\"internet\"", "\r\nOK\r\n"),
            step("AT+QIACT=1", "\r\nOK\r\n"),
            step("AT+CGATT?", "\r\n+CGATT: 1\r\n\r\nOK\r\n"),
        ], dialect: .quectel)
        try bytes("internet").withUnsafeBytes { try d.defineContext(apn: $0) }
        try d.activateBearer()
        #expect(try d.isAttached())
    }

    @Test func registrationEventsArriveInOrder() throws {
        var t = ScriptedTransport()
        t.timed = [(at: 1_100, bytes: bytes("\r\n+CREG: 2\r\n\r\n+CEREG: 1,\"1A2B\",\"01C3D4E5\",7\r\n"))]
        let d = ATDriver(transport: t, dialect: .generic)
        guard case .registration(let a)? = try d.nextEvent(timeoutMs: 500) else { Issue.record("no event"); return }
        #expect(a.domain == .circuit && a.status == .searching)
        guard case .registration(let b)? = try d.nextEvent(timeoutMs: 500) else { Issue.record("no event"); return }
        #expect(b.domain == .eps && b.cell == 0x01C3_D4E5)
        #expect(try d.nextEvent(timeoutMs: 100) == nil)
    }

    @Test func rebootIsAnEventAndClosesSockets() throws {
        var t = ScriptedTransport([step("AT+USOCR=17", "\r\n+USOCR: 0\r\n\r\nOK\r\n")])
        t.timed = [(at: 2_000, bytes: bytes("\r\nRDY\r\n"))]
        let d = ATDriver(transport: t, dialect: .ublox)
        _ = try d.openUDP()
        #expect(d.isSocketOpen(0))
        guard case .moduleRebooted? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no reboot"); return }
        #expect(!d.isSocketOpen(0))
    }
}
