import Foundation
import Testing
@testable import ModemSim

// Each fault of FaultPlan, seen from the client side of the pty. Faults are armed after boot with `setFault`, so
// `#1` means "the next opportunity".
@Suite(.serialized) struct FaultInjectionTests {
    func armed(_ profile: ModemProfile, _ kind: FaultKind, value: Int? = nil,
               trigger: FaultRule.Trigger = .nth(1)) throws -> Bench {
        let b = try Bench(profile)
        #expect(b.ready())
        b.sim.setFault(FaultRule(kind: kind, value: value, trigger: trigger))
        return b
    }

    @Test func garbageBeforeTheAnswer() throws {
        let b = try armed(.simcom, .garbage)
        defer { b.close() }
        let answer = Array(b.client.command("AT+CSQ").utf8)
        let tail = Array("\r\n+CSQ: 20,99\r\n\r\nOK\r\n".utf8)
        #expect(answer.count > tail.count + 2)
        #expect(Array(answer.suffix(tail.count)) == tail)
        let noise = answer.prefix(answer.count - tail.count)
        #expect(noise.dropLast(2).allSatisfy { $0 >= 0x80 } && noise.suffix(2) == [0x0D, 0x0A])
        #expect(b.client.command("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n") // fired once only
        #expect(b.sim.faultCount(.garbage) == 1)
    }

    @Test func droppedFinalResult() throws {
        let b = try armed(.quectel, .dropFinal)
        defer { b.close() }
        #expect(b.client.command("AT+CGMI", timeout: 0.5) == "\r\nQuectel\r\n") // no OK ever comes
        #expect(b.client.command("AT+CGMM") == "\r\nBG96\r\n\r\nOK\r\n")
        #expect(b.events.named("fault").first?.string("name") == "drop-final")
    }

    @Test func rebootInTheMiddleOfACommand() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        b.sim.deliverSMS(from: "+15550123", text: "survives")
        #expect(b.client.command("AT+CREG=2").hasSuffix("\r\nOK\r\n"))
        b.sim.setFault(FaultRule(kind: .rebootMidCommand, value: nil, trigger: .nth(1)))
        _ = b.client.take()
        b.client.write("ATI\r")
        let text = b.client.text(until: "PB DONE\r\n")
        #expect(text.hasPrefix("\r\nManufacturer: SIMCOM INCORPORATED\r\nModel: SIMCOM_SIM7600E-H\r\n"))
        #expect(!text.contains("OK"))
        #expect(text.hasSuffix("\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"))
        #expect(b.client.waitReady())
        #expect(b.client.command("AT").hasPrefix("AT\r")) // echo is back on after the reboot
        #expect(b.client.command("ATE0;+CREG?").contains("+CREG: 0,")) // URC settings were reset
        #expect(b.sim.storedSMS == 1) // the SIM storage was not
        #expect(b.events.named("boot").last?.string("reason") == "fault")
    }

    @Test func urcInterleavedBeforeTheFinalResult() throws {
        let b = try Bench(.ublox)
        defer { b.close() }
        #expect(b.ready())
        #expect(b.client.command("AT+CEREG=1") == "\r\nOK\r\n")
        b.sim.setFault(FaultRule(kind: .interleaveURC, value: nil, trigger: .always))
        #expect(b.client.command("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\n+CEREG: 1\r\n\r\nOK\r\n")
        b.sim.clearFault(.interleaveURC)
        #expect(b.client.command("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    }

    @Test func delayedURC() throws {
        let b = try armed(.simcom, .delayURC, value: 400)
        defer { b.close() }
        _ = b.client.take()
        let start = Date()
        b.sim.deliverSMS(from: "+15550123", text: "late")
        #expect(b.client.text(timeout: 0.2, until: "+CMTI").isEmpty)
        #expect(b.client.text(timeout: 2, until: "+CMTI").contains("+CMTI: \"SM\",0"))
        #expect(Date().timeIntervalSince(start) >= 0.38)
    }

    @Test func fullStorageRefusesAndRecovers() throws {
        let b = try armed(.quectel, .smsFull, trigger: .always)
        defer { b.close() }
        #expect(b.client.command("AT+QINDCFG=\"smsfull\",1") == "\r\nOK\r\n")
        _ = b.client.take()
        b.sim.deliverSMS(from: "+15550123", text: "refused")
        #expect(b.client.text(until: "smsfull").contains("+QIND: \"smsfull\",\"SM\"")) // BG96 indication
        #expect(b.sim.storedSMS == 0 && b.sim.pendingSMS == 1)
        #expect(b.events.named("sms-mt-refused").count == 1)
        #expect(b.client.command("AT+CMGW=23") == "\r\n+CMS ERROR: 322\r\n")
        b.sim.clearFault(.smsFull)
        _ = b.client.take()
        b.client.write("AT+CMGD=0,4\r")
        #expect(b.client.text(until: "+CMTI: \"SM\",0\r\n").hasSuffix("+CMTI: \"SM\",0\r\n"))
        #expect(b.sim.pendingSMS == 0 && b.sim.storedSMS == 1)
    }

    @Test(arguments: [("quectel", "\r\n+QIURC: \"closed\",0\r\n"), ("ublox", "\r\n+UUSOCL: 0\r\n")])
    func socketClosedByTheNetwork(profileName: String, urc: String) throws {
        let b = try armed(try #require(ModemProfile.named(profileName)), .socketClose)
        defer { b.close() }
        let c = b.client, peer = UDPPeerSocket()
        if profileName == "quectel" {
            #expect(c.command("AT+QIACT=1") == "\r\nOK\r\n")
            c.write("AT+QIOPEN=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,0,0\r")
            _ = c.text(until: "+QIOPEN: 0,0\r\n")
        } else {
            #expect(c.command("AT+USOCR=17") == "\r\n+USOCR: 0\r\n\r\nOK\r\n")
        }
        let port = try #require(b.sim.socketPort(0))
        _ = c.take()
        peer.send([1, 2, 3], to: port)
        #expect(c.text(until: urc).hasSuffix(urc))
        #expect(b.sim.socketPort(0) == nil)
        #expect(b.events.named("socket-close").first?.string("by") == "network")
    }

    @Test func simcomNetworkCloseViaAPI() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        b.client.write("AT+NETOPEN;+CIPOPEN=3,\"UDP\",,,0\r")
        _ = b.client.text(until: "+CIPOPEN: 3,0\r\n")
        _ = b.client.take()
        b.sim.closeSocketFromNetwork(3)
        #expect(b.client.text(until: "+IPCLOSE: 3,1\r\n") == "\r\n+IPCLOSE: 3,1\r\n")
    }

    @Test func slowLinkPacesOutput() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        var start = Date()
        let fast = b.client.command("ATI")
        let fastTime = Date().timeIntervalSince(start)
        b.sim.setFault(FaultRule(kind: .slowLink, value: 2400, trigger: .always))
        start = Date()
        let slow = b.client.command("ATI")
        let slowTime = Date().timeIntervalSince(start)
        #expect(slow == fast)
        #expect(slowTime >= Double(slow.utf8.count) * 10 / 2400 * 0.8) // ~0.5 s for ~130 bytes
        #expect(fastTime < 0.3)
    }
}
