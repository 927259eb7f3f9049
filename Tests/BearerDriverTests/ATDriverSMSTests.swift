// SMS commands in PDU mode, TS 27.005 §3.5.1 (+CMGS), §3.4.3 (+CMGR), §3.4.2 (+CMGL), §3.2.2 (+CPMS),
// §3.4.1 (+CMTI, +CMT). The DELIVER PDU is the python-gsmmodem test_pdu.py / TS 23.040 style example
// "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07" (TPDU 24 octets).
import Testing
@testable import BearerDriver

let deliverPDU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"

@Suite struct ATDriverSMSTests {
    @Test func sendWritesLengthPromptHexAndCtrlZ() throws {
        let submit = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
        let d = makeDriver([step("AT+CMGS=23", "\r\n> "), payloadStep(bytes(submit) + [0x1A], "\r\n+CMGS: 7\r\n\r\nOK\r\n")])
        let mr = try bytes(submit).withUnsafeBytes { try d.smsSend(pduHex: $0, tpduLength: 23) }
        #expect(mr == 7)
        #expect(d.engine.transport.finished)
    }

    @Test func sendRefusesNonHexAndWritesNothing() {
        let d = makeDriver([])
        #expect(throws: ATError.invalidArgument) {
            try bytes("00ZZ").withUnsafeBytes { try d.smsSend(pduHex: $0, tpduLength: 1) }
        }
        #expect(d.engine.transport.written.isEmpty)
    }

    @Test func fullStorageIsCMS322() {
        let d = makeDriver([step("AT+CMGS=1", "\r\n+CMS ERROR: 322\r\n")])
        #expect(throws: ATError.cms(ATError.cmsMemoryFull)) {
            try bytes("0000").withUnsafeBytes { try d.smsSend(pduHex: $0, tpduLength: 1) }
        }
    }

    @Test func readReturnsStatusLengthAndPDU() throws {
        let d = makeDriver([
            step("AT+CMGR=3", "\r\n+CMGR: 0,,24\r\n\(deliverPDU)\r\n\r\nOK\r\n"),
            step("AT+CMGR=4", "\r\nOK\r\n"),
        ])
        let m = try #require(try d.smsRead(index: 3))
        #expect(m.status == 0)
        #expect(m.tpduLength == 24)
        #expect(m.pduHex.text == deliverPDU)
        #expect(try d.smsRead(index: 4) == nil)
    }

    @Test func listIteratesEntries() throws {
        let d = makeDriver([step("AT+CMGL=4", "\r\n+CMGL: 1,1,,24\r\n\(deliverPDU)\r\n+CMGL: 5,0,\"x\",24\r\n\(deliverPDU)\r\n\r\nOK\r\n")])
        let list = try d.smsList()
        #expect(d.smsListEntry(0, in: list)?.index == 1)
        #expect(d.smsListEntry(1, in: list)?.index == 5)
        #expect(d.smsListEntry(1, in: list)?.status == 0)
        #expect(d.smsListEntry(2, in: list) == nil)
    }

    @Test func deleteAndStorage() throws {
        let d = makeDriver([
            step("AT+CMGD=3", "\r\nOK\r\n"),
            step("AT+CPMS?", "\r\n+CPMS: \"SM\",30,30,\"SM\",30,30,\"SM\",30,30\r\n\r\nOK\r\n"),
        ])
        try d.smsDelete(index: 3)
        let s = try d.smsStorage()
        #expect(s == SMSStorageStatus(used: 30, total: 30))
        #expect(s.isFull)
    }

    @Test func serviceCentreAndIMEI() throws {
        let d = makeDriver([
            step("AT+CSCA?", "\r\n+CSCA: \"+447785016005\",145\r\n\r\nOK\r\n"),
            step("AT+CGSN", "\r\n+CGSN: 867698041234567\r\n\r\nOK\r\n"),
        ])
        var buf = [UInt8](repeating: 0, count: 32)
        let n = try buf.withUnsafeMutableBytes { try d.serviceCentre(into: $0) }
        #expect(String(decoding: buf.prefix(n), as: UTF8.self) == "+447785016005")
        let m = try buf.withUnsafeMutableBytes { try d.identity("AT+CGSN", into: $0) }
        #expect(String(decoding: buf.prefix(m), as: UTF8.self) == "867698041234567")
    }

    @Test func cmtiCmtAndStorageFullEvents() throws {
        var t = ScriptedTransport()
        t.timed = [(at: 1_050, bytes: bytes("\r\n+CMTI: \"SM\",5\r\n\r\n+CMT: ,24\r\n\(deliverPDU)\r\n\r\n+SMSFULL: SM\r\n"))]
        let d = ATDriver(transport: t, dialect: .simcom)
        guard case .smsStored(let i)? = try d.nextEvent(timeoutMs: 200) else { Issue.record("no +CMTI"); return }
        #expect(i == 5)
        guard case .smsReceived(let len, let pdu)? = try d.nextEvent(timeoutMs: 200) else { Issue.record("no +CMT"); return }
        #expect(len == 24)
        #expect(pdu.text == deliverPDU)
        guard case .smsStorageFull? = try d.nextEvent(timeoutMs: 200) else { Issue.record("no full"); return }
    }

    @Test func cmtSplitAcrossReadsStillPairsItsPDU() throws {
        var t = ScriptedTransport()
        t.chunk = 5
        t.timed = [(at: 1_001, bytes: bytes("\r\n+CMT: \"\",24\r\n")), (at: 1_200, bytes: bytes("\(deliverPDU)\r\n"))]
        let d = ATDriver(transport: t, dialect: .generic)
        guard case .smsReceived(_, let pdu)? = try d.nextEvent(timeoutMs: 1_000) else { Issue.record("no +CMT"); return }
        #expect(pdu.text == deliverPDU)
    }
}
