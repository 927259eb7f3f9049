import Foundation
import Testing
@testable import ModemSim

// Identity, SIM, signal, operator and registration answers per profile, checked over the real pty.
// Expected forms: 3GPP TS 27.007 §5 (identity), §7.2 (+CREG), §10.1.20 (+CGREG), §10.1.22 (+CEREG), §7.3 (+COPS).
@Suite(.serialized) struct ModemSimulatorTests {
    @Test(arguments: ModemProfile.all.map(\.name))
    func identityPerProfile(name: String) throws {
        let profile = try #require(ModemProfile.named(name))
        let b = try Bench(profile)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        #expect(c.command("AT+CGMI") == "\r\n\(profile.manufacturer)\r\n\r\nOK\r\n")
        #expect(c.command("AT+CGMM") == "\r\n\(profile.model)\r\n\r\nOK\r\n")
        #expect(c.command("AT+CGSN") == "\r\n861234050012347\r\n\r\nOK\r\n")
        #expect(c.command("AT+CIMI") == "\r\n001010123456789\r\n\r\nOK\r\n")
        #expect(c.command("AT+CCID").contains("8900101234567890123\r\n\r\nOK"))
        // ATI exactly as the profile's lines say (the SIM800's "SIM800 R14.18" names no CGMM model).
        let ati = profile.atiLines.map {
            $0.replacingOccurrences(of: "%M", with: profile.manufacturer).replacingOccurrences(of: "%N", with: profile.model)
                .replacingOccurrences(of: "%R", with: profile.revision).replacingOccurrences(of: "%I", with: "861234050012347")
        }
        #expect(c.command("ATI") == "\r\n" + ati.joined(separator: "\r\n") + "\r\n\r\nOK\r\n")
        #expect(c.command("AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n")
        #expect(c.command("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
        #expect(c.command("AT+COPS?") == "\r\n+COPS: 0,0,\"Handset Emu\",\(profile.accessTechnology)\r\n\r\nOK\r\n")
        #expect(c.command("AT+COPS=3,2;+COPS?").contains("+COPS: 0,2,\"00101\""))
        #expect(c.command("AT+NOSUCH") == "\r\nERROR\r\n")
        #expect(b.sim.counters.unknownCommands == 1)
        b.client.write("hello\r")
        #expect(b.client.command("AT+CGMI").contains(profile.manufacturer))
        #expect(b.sim.counters.nonATLines == 1)
        // The bad command changed nothing: the module still answers as before.
        #expect(c.command("AT+CGMI").contains(profile.manufacturer))
    }

    @Test func echoOnAndOff() throws {
        let b = try Bench(.quectel)
        defer { b.close() }
        #expect(b.client.waitReady())
        #expect(b.client.command("AT+CGMI").hasPrefix("AT+CGMI\r\r\nQuectel")) // echo is on after boot
        #expect(b.client.command("ATE0") == "ATE0\r\r\nOK\r\n")
        #expect(b.client.command("AT+CGMI") == "\r\nQuectel\r\n\r\nOK\r\n")
        #expect(b.client.command("ATE1") == "\r\nOK\r\n") // echo applies from the next character on
        #expect(b.client.command("AT") == "AT\r\r\nOK\r\n")
    }

    @Test func bootBannersFollowTheProfile() throws {
        let b = try Bench(.quectel)
        defer { b.close() }
        let text = b.client.text(until: "APP RDY")
        #expect(text == "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n\r\nAPP RDY\r\n")
    }

    @Test func registrationReadFormsAndURCs() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        #expect(c.command("AT+CREG?") == "\r\n+CREG: 0,1\r\n\r\nOK\r\n")
        #expect(c.command("AT+CREG=2;+CGREG=1;+CEREG=2") == "\r\nOK\r\n")
        #expect(c.command("AT+CREG?") == "\r\n+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7\r\n\r\nOK\r\n")
        #expect(c.command("AT+CGREG?") == "\r\n+CGREG: 1,1\r\n\r\nOK\r\n")
        _ = c.take()
        b.sim.setRegistration(5)
        let urcs = c.text(until: "+CEREG: 5")
        #expect(urcs.contains("\r\n+CREG: 5,\"1A2B\",\"01C3D4E5\",7\r\n"))
        #expect(urcs.contains("\r\n+CGREG: 5\r\n"))
        b.sim.setRegistration(3)
        #expect(c.text(until: "+CEREG: 3").contains("\r\n+CREG: 3\r\n"))
        #expect(c.command("AT+COPS?") == "\r\n+COPS: 0\r\n\r\nOK\r\n")
        #expect(b.events.named("registration").contains { $0.int("stat") == 3 })
        #expect(c.command("AT+CREG=9") == "\r\nERROR\r\n")
        #expect(c.command("AT+CREG?").hasPrefix("\r\n+CREG: 2,3")) // n unchanged by the rejected set
    }

    @Test func pdpContextAndAttach() throws {
        let b = try Bench(.ublox)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client
        #expect(c.command("AT+CGDCONT=1,\"IP\",\"emu.apn\"") == "\r\nOK\r\n")
        #expect(c.command("AT+CGDCONT?").contains("+CGDCONT: 1,\"IP\",\"emu.apn\""))
        #expect(c.command("AT+CGATT?") == "\r\n+CGATT: 1\r\n\r\nOK\r\n")
        #expect(c.command("AT+CGATT=0;+CGATT?").contains("+CGATT: 0"))
        #expect(c.command("AT+CEREG?").contains("+CEREG: 0,0")) // detached: no EPS registration
        #expect(c.command("AT+CGATT=1;+CGACT=1,1;+CGACT?").contains("+CGACT: 1,1"))
    }

    @Test func resetCommandsReboot() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        _ = b.client.take()
        b.client.write("AT+CRESET\r")
        #expect(b.client.text(until: "PB DONE\r\n").hasPrefix("\r\nOK\r\n\r\nRDY\r\n"))
        #expect(b.events.named("boot").last?.string("reason") == "reset-command")
        #expect(b.ready())
        b.client.write("AT+CFUN=1,1\r")
        #expect(b.client.text(until: "PB DONE\r\n").hasPrefix("\r\nOK\r\n\r\nRDY\r\n"))
        #expect(b.events.named("boot").count == 3)
        let q = try Bench(.quectel)
        defer { q.close() }
        #expect(q.ready())
        #expect(q.client.command("AT+CRESET") == "\r\nERROR\r\n") // not a Quectel command
    }

    @Test func controlPortTakesJSON() throws {
        let log = EventLog()
        let sim = ModemSimulator(profile: .simcom, linkPath: nil, smsPort: 0, timing: .fast, events: { log.append($0) })
        try sim.start()
        defer { sim.stop() }
        let client = try ModemClient(path: sim.slavePath)
        #expect(log.wait(for: "registration", count: 2).last?.int("stat") == 1)
        let port = try #require(sim.smsControlPort)
        let peer = UDPPeerSocket()
        func ask(_ json: String) -> String {
            peer.send(Array(json.utf8), to: port)
            return peer.receive().map { String(decoding: $0.bytes, as: UTF8.self) } ?? "no answer"
        }
        #expect(ask("{\"op\":\"nope\"}").contains("\"ok\":false"))
        #expect(ask("not json").contains("\"ok\":false"))
        #expect(ask("{\"op\":\"send\",\"from\":\"+1555\"}").contains("\"ok\":false")) // neither text nor data
        #expect(sim.counters.badControlRequests == 3)
        #expect(log.named("registration").count == 2 && log.named("sms-mt").isEmpty) // nothing changed
        #expect(ask("{\"op\":\"register\",\"stat\":5}") == "{\"ok\":true}")
        #expect(log.wait(for: "registration", count: 3).last?.int("stat") == 5)

        // Out of order: the module stores the parts as they come.
        let text = String(repeating: "abcdefghij", count: 40)
        #expect(ask("{\"op\":\"send\",\"from\":\"+15550123\",\"text\":\"\(text)\",\"order\":\"shuffle\"}")
            .contains("\"parts\":3"))
        #expect(log.wait(for: "sms-mt", count: 3).compactMap { $0.int("concat-seq") }.sorted() == [1, 2, 3])
        #expect(sim.storedSMS == 3)

        // A subscriber sees each part the module sends, then the reassembled message.
        #expect(ask("{\"op\":\"subscribe\"}") == "{\"ok\":true}")
        let data = (0..<20).map { UInt8($0) }
        for seq in 1...2 {
            let chunk = Array(data[(seq - 1) * 10..<seq * 10])
            let udh: [UInt8] = [0x05, 0x00, 0x03, 0x77, 0x02, UInt8(seq)]
            let tpdu: [UInt8] = [0x41, 0x00] + SimPDU.encodeAddress("+15550123456") + [0x00, 0x04, UInt8(udh.count + 10)]
                + udh + chunk
            _ = client.commandToPrompt("AT+CMGS=\(tpdu.count)", prompt: "> ")
            client.write(Hex.encode([0x00] + tpdu))
            #expect(client.command("\u{1A}").contains("+CMGS: \(seq)"))
        }
        let lines = (0..<3).compactMap { _ in peer.receive().map { String(decoding: $0.bytes, as: UTF8.self) } }
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("{\"event\":\"sms-mo\"") == true)
        #expect(lines.last == "{\"event\":\"sms-mo-complete\",\"from\":\"+15550100001\",\"to\":\"+15550123456\","
            + "\"parts\":2,\"data\":\"\(Hex.encode(data))\"}")
    }
}
