import Foundation
import Testing
@testable import ModemSim

// SMS in PDU mode over the pty (3GPP TS 27.005 §3.4.1 +CNMI, §3.5 +CMGR/+CMGL/+CMGD, §3.5.1 +CMGS) and the SMS centre.
// The SMS-SUBMIT vector is the dreamfabric.com tutorial's "hellohello" to +46708251358 (TPDU 23 octets).
@Suite(.serialized) struct SMSCentreTests {
    static let submit = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"

    @Test func submitWithPromptAndCtrlZ() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        #expect(c.command("AT+CMGF=0") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CMGS=23", prompt: "> ") == "\r\n> ")
        c.write(Self.submit)
        #expect(c.command("\u{1A}") == "\r\n+CMGS: 1\r\n\r\nOK\r\n")
        let mo = try #require(b.events.wait(for: "sms-mo").first)
        #expect(mo.string("to") == "+46708251358")
        #expect(mo.string("text") == "hellohello")
        #expect(mo.string("from") == "+15550100001")
        #expect(mo.string("pdu") == Self.submit)
    }

    @Test func badLengthAndEscapeSendNothing() throws {
        let b = try Bench(.quectel)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        _ = c.commandToPrompt("AT+CMGS=22", prompt: "> ")
        c.write(Self.submit)
        #expect(c.command("\u{1A}") == "\r\n+CMS ERROR: 304\r\n")
        _ = c.commandToPrompt("AT+CMGS=23", prompt: "> ")
        c.write(Self.submit)
        #expect(c.command("\u{1B}") == "\r\nOK\r\n")
        #expect(c.command("AT+CMGS=abc") == "\r\n+CMS ERROR: 304\r\n")
        #expect(b.sim.counters.rejectedPDUs == 1) // the bad length; ESC and a bad command line are not PDUs
        #expect(b.events.named("sms-mo").isEmpty)
        b.sim.setRegistration(0)
        _ = c.commandToPrompt("AT+CMGS=23", prompt: "> ")
        c.write(Self.submit)
        #expect(c.command("\u{1A}") == "\r\n+CMS ERROR: 331\r\n") // no network service
        #expect(b.events.named("sms-mo").isEmpty)
    }

    @Test func incomingViaCMTIThenReadAndDelete() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        _ = c.take()
        #expect(b.sim.deliverSMS(from: "+15550123", text: "hi there") == 1)
        #expect(c.text(until: "+CMTI") .contains("\r\n+CMTI: \"SM\",0\r\n"))
        let read = c.command("AT+CMGR=0")
        let lines = read.split(separator: "\r\n").map(String.init)
        #expect(lines.first?.hasPrefix("+CMGR: 0,,") == true)
        let pdu = try #require(Hex.decode(lines[1]))
        let d = try SimPDU.decodeDeliver(pdu)
        #expect(d.from == "+15550123" && d.body == .text("hi there"))
        #expect(c.command("AT+CMGR=0").contains("+CMGR: 1,,")) // now read
        #expect(c.command("AT+CPMS?").contains("\"SM\",1,10"))
        #expect(c.command("AT+CMGD=0") == "\r\nOK\r\n")
        #expect(c.command("AT+CPMS?").contains("\"SM\",0,10"))
        #expect(c.command("AT+CMGR=10") == "\r\n+CMS ERROR: 321\r\n") // out of range; storage unchanged
        #expect(b.events.named("sms-mt").first?.string("text") == "hi there")
    }

    @Test func concatenatedPartsOutOfOrderListedByCMGL() throws {
        let b = try Bench(.ublox)
        defer { b.close() }
        #expect(b.ready())
        #expect(b.client.command("AT+CNMI?") == "\r\n+CNMI: 1,0,0,0,0\r\n\r\nOK\r\n") // SARA-R4 default: no +CMTI
        #expect(b.client.command("AT+CNMI=2,1") == "\r\nOK\r\n")
        let text = String(repeating: "The quick brown fox. ", count: 20) // 420 septets: 3 parts
        #expect(b.sim.deliverSMS(from: "+15550123", text: text, order: .reverse) == 3)
        #expect(b.client.text(until: "+CMTI: \"SM\",3").contains("+CMTI: \"SM\",1")) // u-blox counts from 1
        let list = b.client.command("AT+CMGL=4").split(separator: "\r\n").map(String.init)
        let pdus = stride(from: 1, to: list.count - 1, by: 2).compactMap { Hex.decode(list[$0]) }
        #expect(pdus.count == 3)
        var bySeq: [Int: String] = [:]
        for p in pdus {
            let d = try SimPDU.decodeDeliver(p)
            if case .text(let t) = d.body, let seq = d.header.concatSeq { bySeq[seq] = t }
        }
        #expect(b.events.named("sms-mt").map { $0.int("concat-seq") } == [3, 2, 1])
        #expect((1...3).compactMap { bySeq[$0] }.joined() == text)
    }

    @Test func duplicatedPartIsDeliveredTwice() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        let text = String(repeating: "x", count: 200) // 2 parts, the first sent again
        #expect(b.sim.deliverSMS(from: "+15550123", text: text, duplicate: true) == 2)
        #expect(b.sim.storedSMS == 3)
        #expect(b.events.named("sms-mt").map { $0.int("concat-seq") } == [1, 2, 1])
    }

    @Test func directDeliveryWithCNMI22() throws {
        let b = try Bench(.quectel)
        defer { b.close() }
        #expect(b.ready())
        #expect(b.client.command("AT+CNMI=2,2,0,0,0") == "\r\nOK\r\n")
        b.sim.deliverSMS(from: "+15550123", data: [0xC0, 0xFF, 0xEE], portDst: 2948, portSrc: 9200)
        let text = b.client.read { String(decoding: $0, as: UTF8.self).split(separator: "\r\n").count >= 2 }
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\r\n").map(String.init)
        #expect(lines[0].hasPrefix("+CMT: ,"))
        let d = try SimPDU.decodeDeliver(try #require(Hex.decode(lines[1])))
        #expect(d.body == .data([0xC0, 0xFF, 0xEE]) && d.header.portDst == 2948 && d.header.portSrc == 9200)
        #expect(b.sim.storedSMS == 0) // +CMT bypasses storage
    }

    @Test func fullStorageHoldsMessagesAtTheCentre() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        for i in 0..<11 { b.sim.deliverSMS(from: "+15550123", text: "msg \(i)") }
        #expect(b.sim.storedSMS == 10)
        #expect(b.sim.pendingSMS == 1)
        #expect(!b.events.named("sms-mt-refused").isEmpty)
        // SIM7600 URC twice: once as the tenth fills the storage, once as the eleventh is refused. Both must be
        // read before the delete, else the second can land in front of its OK.
        let full = "+CMTI: \"SM\",9\r\n\r\n+SMSFULL\r\n\r\n+SMSFULL\r\n"
        #expect(b.client.text(until: full).hasSuffix(full))
        _ = b.client.take()
        b.client.write("AT+CMGD=0,4\r") // delete all; the held message then arrives, after the OK
        #expect(b.client.text(until: "+CMTI: \"SM\",0\r\n") == "\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n")
        #expect(b.sim.pendingSMS == 0)
    }
}
