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
        #expect(c.command("ATI").contains(profile.model))
        #expect(c.command("AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n")
        #expect(c.command("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
        #expect(c.command("AT+COPS?") == "\r\n+COPS: 0,0,\"Handset Emu\",\(profile.accessTechnology)\r\n\r\nOK\r\n")
        #expect(c.command("AT+COPS=3,2;+COPS?").contains("+COPS: 0,2,\"00101\""))
        #expect(c.command("AT+NOSUCH") == "\r\nERROR\r\n")
        #expect(b.sim.unknownCommands == 1)
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
        let port = try #require(sim.smsControlPort)
        let peer = UDPPeerSocket()
        peer.send(Array("{\"op\":\"nope\"}".utf8), to: port)
        let bad = try #require(peer.receive())
        #expect(String(decoding: bad.bytes, as: UTF8.self).contains("\"ok\":false"))
        peer.send(Array("{\"op\":\"register\",\"stat\":5}".utf8), to: port)
        #expect(String(decoding: try #require(peer.receive()).bytes, as: UTF8.self) == "{\"ok\":true}")
        #expect(log.wait(for: "registration", count: 2).last?.int("stat") == 5)
    }
}
