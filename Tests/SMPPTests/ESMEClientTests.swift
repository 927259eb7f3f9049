import Foundation
import Testing
@testable import SMPP
import SMPPNIO

/// Every test runs against both ESMEs: the threaded one and the swift-nio one.
enum ESMEKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case threaded, nio
    var testDescription: String { rawValue }
}

/// The SMSC end of one test, scripted step by step with the codec under test's own decoder.
final class ScriptedSMSC {
    let listenFD: Int32
    let port: Int
    init() throws { (listenFD, port) = try SMPPSocket.listen(port: 0) }
    deinit { close(listenFD) }

    func accept() throws -> SMPPSocket { try #require(SMPPSocket.accept(listening: listenFD, timeoutMs: 5000)) }

    func read(_ s: SMPPSocket, timeoutMs: Int32 = 5000) throws -> SMPPPDU? {
        guard s.readable(timeoutMs: timeoutMs) else { return nil }
        return try SMPPPDU.decode(s.readPDU())
    }

    /// Accepts, reads the bind and answers it.
    func acceptBound(status: UInt32 = 0) throws -> (SMPPSocket, SMPPBind) {
        let s = try accept()
        let pdu = try #require(try read(s))
        guard case .bindTransceiver(let b) = pdu.body else { throw SMPPError.unknownCommand(pdu.command.rawValue) }
        try s.send(SMPPPDU(.bindTransceiverResp(systemID: "smsc"), sequence: pdu.sequence, status: status))
        return (s, b)
    }
}

final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [InboundSMS] = []
    func add(_ m: InboundSMS) { lock.lock(); items.append(m); lock.unlock() }
    var all: [InboundSMS] { lock.lock(); defer { lock.unlock() }; return items }
}

func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end { if condition() { return true }; usleep(10_000) }
    return condition()
}

@Suite(.serialized) struct ESMEClientTests {
    func client(_ kind: ESMEKind, _ smsc: ScriptedSMSC, _ inbox: Inbox = Inbox(),
                tweak: (inout ESMEConfig) -> Void = { _ in }) -> any ESMELink {
        var c = ESMEConfig(host: "127.0.0.1", port: smsc.port, systemID: "gateway", password: "pw")
        c.reconnectDelay = 0.1
        tweak(&c)
        switch kind {
        case .threaded: return ESMEClient(config: c, onDeliver: inbox.add)
        case .nio: return NIOESMEClient(config: c, onDeliver: inbox.add)
        }
    }

    /// The outbox is bounded: a message that does not fit is refused whole, typed and counted; what was queued
    /// stays queued, and room comes back as parts leave (here: the link binds and sends them).
    @Test(arguments: ESMEKind.allCases) func aFullOutboxRefusesTheWholeMessage(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc, tweak: { $0.outboxCapacity = 4 })
        defer { esme.stop() }
        #expect(try esme.send(to: "+15550100001", payload: (0..<300).map { UInt8($0 & 0xFF) }) == 3)
        #expect(throws: ESMESendError.outboxFull(capacity: 4)) { try esme.send(to: "+15550100001", payload: (0..<200).map { UInt8($0) }) }
        #expect(esme.pendingParts == 3 && esme.counters.outboxRefused == 1)
        #expect(try esme.send(to: "+15550100001", payload: [1]) == 1)
        #expect(throws: ESMESendError.outboxFull(capacity: 4)) { try esme.send(to: "+15550100001", payload: [2]) }
        #expect(esme.pendingParts == 4 && esme.counters.outboxRefused == 2)
        do throws(ESMESendError) {
            try esme.send(to: "+15550100001", payload: [UInt8](repeating: 0, count: 40_000))
            Issue.record("a 40,000-octet payload was queued")
        } catch {
            guard case .udh(.tooManyParts(_)) = error else { Issue.record("\(error)"); return }
        }
        #expect(esme.counters.outboxRefused == 2)  // not an outbox refusal
        esme.start()
        let (s, _) = try smsc.acceptBound()
        defer { s.close() }
        for _ in 0..<4 {
            let pdu = try #require(try smsc.read(s))
            guard case .submitSM = pdu.body else { Issue.record("expected submit_sm"); return }
            try s.send(SMPPPDU(.submitSMResp(messageID: "m"), sequence: pdu.sequence))
        }
        let end = Date().addingTimeInterval(5)
        while esme.pendingParts > 0 && Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try esme.send(to: "+15550100001", payload: [3]) == 1)
    }

    @Test(arguments: ESMEKind.allCases) func windowThrottleAndResend(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc) { $0.window = 2; $0.throttleBackoff = 0.3 }
        esme.start()
        defer { esme.stop() }
        let (s, bind) = try smsc.acceptBound()
        defer { s.close() }
        #expect(bind.systemID == "gateway" && bind.password == "pw" && bind.interfaceVersion == 0x34)
        #expect(try esme.send(to: "+15550100001", payload: (0..<300).map { UInt8($0 & 0xFF) }) == 3)

        func submit(_ pdu: SMPPPDU?) throws -> (seq: UInt32, m: SMPPShortMessage) {
            let pdu = try #require(pdu)
            guard case .submitSM(let m) = pdu.body else { throw SMPPError.unknownCommand(pdu.command.rawValue) }
            return (pdu.sequence, m)
        }
        let first = try submit(try smsc.read(s)), second = try submit(try smsc.read(s))
        #expect(first.m.esmClass == 0x40 && first.m.dataCoding == 0x04)
        #expect(first.m.destTON == 1 && first.m.destAddr == "15550100001")
        #expect(first.seq != second.seq)
        #expect(try smsc.read(s, timeoutMs: 300) == nil) // window of 2 is full
        try s.send(SMPPPDU(.submitSMResp(messageID: ""), sequence: first.seq, status: SMPPStatus.throttled))
        let throttledAt = Date()
        try s.send(SMPPPDU(.submitSMResp(messageID: "m2"), sequence: second.seq))
        let again = try submit(try smsc.read(s))
        #expect(Date().timeIntervalSince(throttledAt) >= 0.25) // back-off honoured
        #expect(again.m.shortMessage == first.m.shortMessage) // the throttled part, resent first
        #expect(again.seq != first.seq)
        let third = try submit(try smsc.read(s))
        let seqs = try [second, again, third].map { try PortAddressedSMS.parse($0.m.shortMessage, udhi: true).0.concatSeq }
        #expect(seqs == [2, 1, 3])
        try s.send(SMPPPDU(.submitSMResp(messageID: "m1"), sequence: again.seq))
        try s.send(SMPPPDU(.submitSMResp(messageID: "m3"), sequence: third.seq))
        #expect(eventually { esme.counters.submitsAcked == 3 })
        let c = esme.counters
        #expect(c.throttled == 1 && c.resent == 1 && c.submitsSent == 4 && c.submitsFailed == 0)
    }

    @Test(arguments: ESMEKind.allCases) func backOffDoublesWhileThrottledAndResetsAfterSuccess(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc) { $0.throttleBackoff = 0.15 }
        esme.start()
        defer { esme.stop() }
        let (s, _) = try smsc.acceptBound()
        defer { s.close() }
        try esme.send(to: "15550100001", payload: [1])
        var gaps: [Double] = []
        var last = Date()
        for status in [SMPPStatus.throttled, SMPPStatus.throttled, SMPPStatus.ok] {
            let pdu = try #require(try smsc.read(s))
            gaps.append(Date().timeIntervalSince(last))
            try s.send(SMPPPDU(.submitSMResp(messageID: ""), sequence: pdu.sequence, status: status))
            last = Date()
        }
        #expect(gaps[1] >= 0.14 && gaps[2] >= 0.29) // 0.15 s, then 0.3 s
        try esme.send(to: "15550100001", payload: [2])
        _ = try #require(try smsc.read(s))
        #expect(Date().timeIntervalSince(last) < 0.14) // success cleared the back-off
        #expect(esme.counters.throttled == 2)
    }

    @Test(arguments: ESMEKind.allCases) func deliverEnquireLinkAndBadPDUs(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let inbox = Inbox()
        let esme = client(kind, smsc, inbox)
        esme.start()
        defer { esme.stop() }
        let (s, _) = try smsc.acceptBound()
        defer { s.close() }
        var m = SMPPShortMessage()
        m.sourceTON = 1; m.sourceAddr = "15550100001"; m.destAddr = "4000"
        m.esmClass = 0x40; m.dataCoding = 0x04
        m.shortMessage = [0x06, 0x05, 0x04, 0x40, 0x10, 0x23, 0xF0, 0xAB, 0xCD]
        try s.send(SMPPPDU(.deliverSM(m), sequence: 41))
        #expect(try smsc.read(s) == SMPPPDU(.deliverSMResp(messageID: ""), sequence: 41))
        #expect(eventually { inbox.all.count == 1 })
        let got = try #require(inbox.all.first)
        #expect(got.originator == "+15550100001" && got.payload == [0xAB, 0xCD])
        #expect(got.udh.portDst == 16400 && got.udh.portSrc == 9200)

        // An unknown command id: generic_nack, ESME_RINVCMDID, same sequence (§4.3).
        try s.write([0, 0, 0, 16, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 42])
        #expect(try smsc.read(s) == SMPPPDU(.genericNack, sequence: 42, status: SMPPStatus.invalidCommandID))
        // A deliver_sm cut short: generic_nack with ESME_RINVMSGLEN.
        try s.write([0, 0, 0, 18, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 43, 0, 1])
        #expect(try smsc.read(s) == SMPPPDU(.genericNack, sequence: 43, status: SMPPStatus.invalidMessageLength))
        try s.send(SMPPPDU(.enquireLink, sequence: 44))
        #expect(try smsc.read(s) == SMPPPDU(.enquireLinkResp, sequence: 44))
        // UDHI set but the UDH overruns the data: rejected for good (ESME_RX_R_APPN), not handed on.
        m.shortMessage = [0x06, 0x05, 0x04, 0x40]
        try s.send(SMPPPDU(.deliverSM(m), sequence: 45))
        #expect(try smsc.read(s) == SMPPPDU(.deliverSMResp(messageID: ""), sequence: 45, status: SMPPStatus.rejectedForGood))
        // smpplib's delivery receipt vector: answered and counted, not handed on as data.
        let receipt = try SMPPPDU.decode(Array(hexString: SMPPPDUTests.receipt))
        try s.send(receipt)
        #expect(try smsc.read(s) == SMPPPDU(.deliverSMResp(messageID: ""), sequence: receipt.sequence))
        #expect(eventually { esme.counters.deliveryReceipts == 1 })
        let c = esme.counters
        #expect(c.malformed[.unknownCommand(0x99)] == 1 && c.malformed[.truncated] == 1)
        #expect(c.genericNacksSent == 2 && c.enquireLinksAnswered == 1 && c.delivered == 1 && inbox.all.count == 1)
        #expect(c.badUDH == 1)
        #expect(esme.isBound) // bad PDUs do not cost the session
    }

    @Test(arguments: ESMEKind.allCases) func unansweredSubmitCostsTheLinkAndIsResent(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc) { $0.responseTimeout = 0.3 }
        esme.start()
        defer { esme.stop() }
        let (s1, _) = try smsc.acceptBound()
        try esme.send(to: "15550100001", payload: [9, 9])
        let lost = try #require(try smsc.read(s1))
        guard case .submitSM(let first) = lost.body else { Issue.record("want submit_sm, got \(lost)"); return }
        // No submit_sm_resp: after the response timeout the ESME gives up on this link, re-binds and resends.
        let (s2, _) = try smsc.acceptBound()
        defer { s2.close(); s1.close() }
        let again = try #require(try smsc.read(s2))
        #expect(again.body == .submitSM(first))
        try s2.send(SMPPPDU(.submitSMResp(messageID: "x"), sequence: again.sequence))
        #expect(eventually { esme.counters.submitsAcked == 1 })
        let c = esme.counters
        #expect(c.responseTimeouts == 1 && c.resent == 1 && c.binds == 2)
    }

    @Test(arguments: ESMEKind.allCases) func stopUnbinds(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc)
        esme.start()
        let (s, _) = try smsc.acceptBound()
        defer { s.close() }
        #expect(eventually { esme.isBound })
        let stopped = DispatchSemaphore(value: 0)
        Thread { esme.stop(); stopped.signal() }.start()
        let pdu = try #require(try smsc.read(s))
        #expect(pdu.body == .unbind)
        try s.send(SMPPPDU(.unbindResp, sequence: pdu.sequence))
        #expect(stopped.wait(timeout: .now() + 2) == .success)
        #expect(!esme.isBound)
    }

    @Test(arguments: ESMEKind.allCases) func sendsEnquireLinkWhenIdle(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc) { $0.enquireLinkInterval = 0.2 }
        esme.start()
        defer { esme.stop() }
        let (s, _) = try smsc.acceptBound()
        defer { s.close() }
        let pdu = try #require(try smsc.read(s, timeoutMs: 2000))
        #expect(pdu.body == .enquireLink)
        try s.send(SMPPPDU(.enquireLinkResp, sequence: pdu.sequence))
    }

    @Test(arguments: ESMEKind.allCases) func reconnectsRebindsAndSendsWhatWaited(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc)
        esme.start()
        defer { esme.stop() }
        let (s1, _) = try smsc.acceptBound()
        #expect(eventually { esme.isBound })
        s1.close() // the SMSC drops the link
        #expect(eventually { !esme.isBound })
        try esme.send(to: "15550100001", payload: [1, 2, 3])
        let (s2, bind) = try smsc.acceptBound()
        defer { s2.close() }
        #expect(bind.systemID == "gateway")
        let pdu = try #require(try smsc.read(s2))
        guard case .submitSM(let m) = pdu.body else { Issue.record("want submit_sm, got \(pdu)"); return }
        #expect(try PortAddressedSMS.parse(m.shortMessage, udhi: true).1 == [1, 2, 3])
        #expect(esme.counters.binds == 2 && esme.counters.reconnects >= 1)
    }

    @Test(arguments: ESMEKind.allCases) func refusedBindIsCountedAndRetried(_ kind: ESMEKind) throws {
        let smsc = try ScriptedSMSC()
        let esme = client(kind, smsc)
        esme.start()
        defer { esme.stop() }
        let (s1, _) = try smsc.acceptBound(status: SMPPStatus.invalidPassword)
        s1.close()
        let (s2, _) = try smsc.acceptBound()
        defer { s2.close() }
        #expect(eventually { esme.isBound })
        #expect(esme.counters.bindFailures == 1 && esme.counters.binds == 1)
    }
}

extension Array where Element == UInt8 {
    init(hexString s: String) {
        var out: [UInt8] = []
        var it = s.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        self = out
    }
}
