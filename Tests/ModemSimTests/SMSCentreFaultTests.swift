import Foundation
import Testing
@testable import ModemSim

// The SMS centre's network faults (sms-loss, sms-duplicate, sms-reorder, partial-sms, reboot-between-parts) and reboot-mid-sms,
// seen from the pty and the network events. The SMS-SUBMIT is the dreamfabric.com tutorial's "hellohello"
// (TPDU 23 octets), as in SMSCentreTests.
@Suite(.serialized) struct SMSCentreFaultTests {
    static let submit = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    static let longText = String(repeating: "The quick brown fox. ", count: 20) // 420 septets: 3 parts

    func armed(_ kind: FaultKind, _ trigger: FaultRule.Trigger = .nth(1), value: Int? = nil) throws -> Bench {
        let b = try Bench(.simcom)
        #expect(b.ready())
        b.sim.setFault(FaultRule(kind: kind, value: value, trigger: trigger))
        return b
    }

    func send(_ b: Bench) -> String {
        #expect(b.client.command("AT+CMGF=0") == "\r\nOK\r\n")
        _ = b.client.commandToPrompt("AT+CMGS=23", prompt: "> ")
        b.client.write(Self.submit)
        return b.client.command("\u{1A}", timeout: 1)
    }

    @Test func lostMTPartNeverReachesTheModule() throws {
        let b = try armed(.smsLoss, .nth(2))
        defer { b.close() }
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3) // the centre still split it in 3
        _ = b.events.wait(for: "sms-mt", count: 2)
        #expect(b.events.named("sms-mt").map { $0.int("concat-seq") } == [1, 3])
        #expect(b.sim.storedSMS == 2)
        #expect(b.sim.pendingSMS == 0) // lost, not waiting
        #expect(b.sim.faultCount(.smsLoss) == 1)
    }

    @Test func partialSMSCarriesOnlyTheFirstPartOfEachConcatenatedMessage() throws {
        let b = try armed(.partialSMS, .always)
        defer { b.close() }
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3)
        #expect(b.sim.deliverSMS(from: "+15550123", text: "short") == 1)  // nothing to cut
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3)
        let mt = b.events.wait(for: "sms-mt", count: 3)
        #expect(mt.map { $0.int("concat-seq") } == [1, nil, 1])
        #expect(mt[0].int("concat-ref") != mt[2].int("concat-ref"))
        #expect(b.sim.storedSMS == 3)
        #expect(b.sim.pendingSMS == 0)  // the rest never comes
        #expect(b.sim.faultCount(.partialSMS) == 2)
    }

    @Test func lostMOIsAnsweredButNeverCarried() throws {
        let b = try armed(.smsLoss)
        defer { b.close() }
        #expect(send(b) == "\r\n+CMGS: 1\r\n\r\nOK\r\n") // the module cannot tell
        #expect(b.events.wait(for: "fault").first?.string("direction") == "mo")
        #expect(b.events.named("sms-mo").isEmpty)
        #expect(send(b) == "\r\n+CMGS: 2\r\n\r\nOK\r\n") // fired once: the next one goes through
        #expect(b.events.wait(for: "sms-mo").count == 1)
    }

    @Test func duplicatedMOIsCarriedTwiceWithOneAnswer() throws {
        let b = try armed(.smsDuplicate)
        defer { b.close() }
        #expect(send(b) == "\r\n+CMGS: 1\r\n\r\nOK\r\n")
        let mo = b.events.wait(for: "sms-mo", count: 2)
        #expect(mo.count == 2 && mo[0].string("pdu") == mo[1].string("pdu"))
    }

    @Test func duplicatedMTPartIsStoredTwice() throws {
        let b = try armed(.smsDuplicate, .nth(3))
        defer { b.close() }
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3)
        #expect(b.events.wait(for: "sms-mt", count: 4).map { $0.int("concat-seq") } == [1, 2, 3, 3])
        #expect(b.sim.storedSMS == 4)
    }

    @Test func reorderedMessageArrivesLastPartFirst() throws {
        let b = try armed(.smsReorder)
        defer { b.close() }
        #expect(b.sim.deliverSMS(from: "+15550123", text: "one part: not an opportunity") == 1)
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3)
        let seqs = b.events.wait(for: "sms-mt", count: 4).map { $0.int("concat-seq") }
        #expect(seqs == [nil, 3, 2, 1])
        #expect(b.sim.faultCount(.smsReorder) == 1)
    }

    @Test func rebootBetweenPartsKeepsTheRestForLater() throws {
        let b = try armed(.rebootBetweenParts)
        defer { b.close() }
        _ = b.client.take()
        #expect(b.sim.deliverSMS(from: "+15550123", text: Self.longText) == 3)
        // Part 1 is stored, the module reboots, parts 2 and 3 follow once it is registered again.
        #expect(b.client.text(timeout: 5, until: "PB DONE").contains("RDY"))
        let mt = b.events.wait(for: "sms-mt", count: 3, timeout: 5)
        #expect(mt.map { $0.int("concat-seq") } == [1, 2, 3])
        #expect(b.events.named("boot").last?.string("reason") == "fault")
        #expect(b.sim.storedSMS == 3) // nothing lost: the SIM kept part 1
        #expect(b.sim.pendingSMS == 0)
    }

    @Test func rebootMidSMSNotSentLeavesNothingOnTheNetwork() throws {
        let b = try armed(.rebootMidSMS)
        // No VALUE: the plan's seeded coin decides; find a seed-independent answer from the event.
        defer { b.close() }
        let answer = send(b) + b.client.text(timeout: 2, until: "PB DONE")
        #expect(!answer.contains("+CMGS:") && !answer.contains("OK"))
        #expect(answer.contains("RDY"))  // the boot banners instead of an answer
        let fault = try #require(b.events.wait(for: "fault").first)
        #expect(fault.string("name") == "reboot-mid-sms")
        let sent = fault["sent"] == .bool(true)
        #expect(b.events.named("sms-mo").count == (sent ? 1 : 0))
        #expect(b.events.named("boot").last?.string("reason") == "fault")
    }

    @Test func rebootMidSMSWithValueOneReachesTheNetwork() throws {
        let b = try armed(.rebootMidSMS, value: 1)
        defer { b.close() }
        let answer = send(b) + b.client.text(timeout: 2, until: "PB DONE")
        #expect(!answer.contains("+CMGS:") && answer.contains("RDY"))
        #expect(b.events.wait(for: "sms-mo").count == 1)
        #expect(b.events.named("fault").first?["sent"] == .bool(true))
    }
}
