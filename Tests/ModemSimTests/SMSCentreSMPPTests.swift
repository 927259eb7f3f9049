import Foundation
import SMPP
import Testing
@testable import ModemSim

/// Received deliver_sm, collected off the ESME's thread.
final class SMPPInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [InboundSMS] = []
    func add(_ m: InboundSMS) { lock.lock(); items.append(m); lock.unlock() }
    var all: [InboundSMS] { lock.lock(); defer { lock.unlock() }; return items }
}

private func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end { if condition() { return true }; usleep(10_000) }
    return condition()
}

// The SMS centre's SMPP side with our ESME: submit_sm lands in the module (read back with +CMGR, 3GPP TS 27.005
// §3.4.3) and the module's SMS-SUBMIT (the dreamfabric "hellohello" vector, as in SMSCentreTests) comes out as deliver_sm.
@Suite(.serialized) struct SMSCentreSMPPTests {
    func esme(_ b: Bench, password: String = "pw", inbox: SMPPInbox = SMPPInbox()) throws -> ESMEClient {
        let port = try #require(b.sim.smppPort)
        var c = ESMEConfig(host: "127.0.0.1", port: port, systemID: "gateway", password: password)
        c.sourceAddr = "+15550199"
        c.reconnectDelay = 0.1
        return ESMEClient(config: c, onDeliver: inbox.add)
    }

    @Test func submitSMBecomesConcatenatedMTWithPortsKept() throws {
        let b = try Bench(.simcom, smpp: SMPPOptions(password: "pw"))
        defer { b.close() }
        #expect(b.ready())
        let client = try esme(b)
        client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isBound })
        let payload = (0..<300).map { UInt8(($0 * 7) & 0xFF) }
        #expect(try client.send(to: "+15550100001", payload: payload) == 3)
        #expect(b.client.text(until: "+CMTI: \"SM\",2").contains("+CMTI: \"SM\",0"))
        #expect(waitUntil { client.counters.submitsAcked == 3 })
        var joined: [UInt8] = []
        for i in 0..<3 {
            let lines = b.client.command("AT+CMGR=\(i)").split(separator: "\r\n").map(String.init)
            let d = try SimPDU.decodeDeliver(try #require(Hex.decode(lines[1])))
            #expect(d.from == "+15550199")
            #expect(d.header.portDst == 16400 && d.header.portSrc == 16400)
            #expect(d.header.concat16Bit && d.header.concatTotal == 3 && d.header.concatSeq == i + 1)
            guard case .data(let part) = d.body else { Issue.record("part \(i) is not data"); continue }
            joined += part
        }
        #expect(joined == payload)
        #expect(b.sim.smppCounters.submits == 3 && b.sim.smppCounters.binds == 1)
    }

    @Test func moSMSComesOutAsDeliverSM() throws {
        let b = try Bench(.simcom, smpp: SMPPOptions())
        defer { b.close() }
        #expect(b.ready())
        let inbox = SMPPInbox()
        let client = try esme(b, inbox: inbox)
        client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isBound && b.sim.smppBoundSessions == 1 })
        let c = b.client
        #expect(c.command("AT+CMGF=0") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CMGS=23", prompt: "> ") == "\r\n> ")
        c.write(SMSCentreTests.submit)
        #expect(c.command("\u{1A}").contains("+CMGS: "))
        #expect(waitUntil { inbox.all.count == 1 })
        let got = try #require(inbox.all.first)
        #expect(got.originator == "+15550100001" && got.destination == "46708251358")
        #expect(got.dataCoding == 0 && got.payload == Array("hellohello".utf8))
        #expect(waitUntil { b.sim.smppCounters.deliverResps == 1 }) // the ESME answered
    }

    @Test func moWaitsForAnESMEToBind() throws {
        let b = try Bench(.simcom, smpp: SMPPOptions())
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        #expect(c.command("AT+CMGF=0") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CMGS=23", prompt: "> ") == "\r\n> ")
        c.write(SMSCentreTests.submit)
        #expect(c.command("\u{1A}").contains("+CMGS: "))
        #expect(waitUntil { b.sim.smppHeld == 1 }) // nobody bound yet
        let inbox = SMPPInbox()
        let client = try esme(b, inbox: inbox)
        client.start()
        defer { client.stop() }
        #expect(waitUntil { inbox.all.count == 1 })
        #expect(inbox.all.first?.payload == Array("hellohello".utf8))
        #expect(b.sim.smppHeld == 0 && b.sim.smppCounters.delivers == 1)
        #expect(b.events.named("smpp-bind").first?.string("system-id") == "gateway")
    }

    @Test func refusalsAreAnsweredAndCounted() throws {
        let b = try Bench(.simcom, smpp: SMPPOptions(password: "pw", gatewayNumber: "+15550199"))
        defer { b.close() }
        #expect(b.ready())
        let wrong = try esme(b, password: "nope")
        wrong.start()
        #expect(waitUntil { wrong.counters.bindFailures >= 1 })
        wrong.stop()
        #expect(b.sim.smppCounters.bindsRefused >= 1)

        let client = try esme(b)
        client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isBound })
        try client.send(to: "+15550100002", payload: [1]) // not the module's number: ESME_RINVDSTADR
        #expect(waitUntil { client.counters.submitsFailed == 1 })
        #expect(b.sim.smppCounters.submitsRefused == 1 && b.sim.storedSMS == 0)
        // An MO SMS to another number than the gateway's stays off SMPP.
        let c = b.client
        #expect(c.command("AT+CMGF=0") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CMGS=23", prompt: "> ") == "\r\n> ")
        c.write(SMSCentreTests.submit)
        #expect(c.command("\u{1A}").contains("+CMGS: "))
        #expect(b.events.wait(for: "sms-mo").count == 1)
        #expect(b.sim.smppCounters.delivers == 0 && client.counters.delivered == 0)
    }

    @Test func badPDUsGetGenericNackAndTheCentreStaysUp() throws {
        let b = try Bench(.simcom, smpp: SMPPOptions())
        defer { b.close() }
        #expect(b.ready())
        let s = try SMPPSocket.connect(host: "127.0.0.1", port: try #require(b.sim.smppPort))
        defer { s.close() }
        func reply() throws -> SMPPPDU? {
            guard s.readable(timeoutMs: 3000) else { return nil }
            return try SMPPPDU.decode(s.readPDU())
        }
        try s.send(SMPPPDU(.submitSM(SMPPShortMessage()), sequence: 1)) // before any bind
        #expect(try reply() == SMPPPDU(.submitSMResp(messageID: ""), sequence: 1, status: SMPPStatus.incorrectBindStatus))
        try s.write([0, 0, 0, 16, 0, 0, 1, 0x99, 0, 0, 0, 0, 0, 0, 0, 2]) // unknown command_id
        #expect(try reply() == SMPPPDU(.genericNack, sequence: 2, status: SMPPStatus.invalidCommandID))
        try s.write([0, 0, 0, 18, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, 0x41, 0x42]) // bind, system_id without NUL
        #expect(try reply() == SMPPPDU(.genericNack, sequence: 3, status: SMPPStatus.invalidMessageLength))
        // command_length over 64 KiB: refused before reading on; the stream is lost, so the link goes.
        try s.write([0, 1, 0, 1, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 4])
        #expect(try reply() == SMPPPDU(.genericNack, sequence: 0, status: SMPPStatus.invalidCommandLength))
        #expect(s.readable(timeoutMs: 3000))
        #expect(throws: SMPPSocketError.closed) { try s.readPDU() }
        let c = b.sim.smppCounters
        #expect(c.notBound == 1 && c.genericNacksSent == 3)
        #expect(c.malformed == [.unknownCommand(0x199): 1, .unterminatedCString("system_id"): 1, .badLength(0x10001): 1])
        let client = try esme(b)
        client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isBound }) // the centre still serves
    }
}
