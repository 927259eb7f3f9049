import BearerDriver
import Foundation
import Testing
@testable import ModemSim

// The sim800 profile on the wire, both connection modes, as the SIM800 Series AT Command Manual V1.09 chapter 8
// describes them (see ModemEngine+CIPSTART.swift); then the driver's SIM800 dialect against it.
@Suite(.serialized) struct SIM800ProfileTests {
    func ready() throws -> Bench {
        let b = try Bench(.sim800)
        #expect(b.ready())
        return b
    }

    /// Writes `line` and reads up to `until`.
    func exchange(_ b: Bench, _ line: String, until: String) -> String {
        _ = b.client.take()
        b.client.write(line + "\r")
        return b.client.text(until: until)
    }

    @Test func identityAndBootAsTheModulePrintsThem() throws {
        let b = try ready()
        defer { b.close() }
        _ = b.client.take()
        b.sim.reboot()
        #expect(b.client.text(until: "SMS Ready\r\n") == "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n")
        #expect(b.client.waitReady())
        #expect(b.client.command("ATE0").contains("OK"))
        #expect(b.client.command("AT+CGMM") == "\r\nSIMCOM_SIM800L\r\n\r\nOK\r\n")
        #expect(b.client.command("ATI") == "\r\nSIM800 R14.18\r\n\r\nOK\r\n")
        #expect(b.client.command("AT+CCID") == "\r\n8900101234567890123\r\n\r\nOK\r\n")
    }

    @Test func multiConnectionUDPBothWays() throws {
        let b = try ready()
        defer { b.close() }
        let c = b.client, peer = UDPPeerSocket()
        // §8.2.1: CIPMUX only in IP INITIAL; §8.2.2: multi-IP CIPSTART only in IP STATUS (after CSTT, CIICR, CIFSR).
        #expect(c.command("AT+CIPMUX=1") == "\r\nOK\r\n")
        #expect(c.command("AT+CSTT=\"internet\"") == "\r\nOK\r\n")
        #expect(c.command("AT+CIPMUX=0") == "\r\nERROR\r\n")
        #expect(c.command("AT+CIPSTART=2,\"UDP\",\"127.0.0.1\",\(peer.port)") == "\r\nERROR\r\n")
        #expect(c.command("AT+CIICR") == "\r\nOK\r\n")
        #expect(exchange(b, "AT+CIFSR", until: "\r\n10.0.0.2\r\n") == "\r\n10.0.0.2\r\n")
        #expect(exchange(b, "AT+CIPSTATUS", until: "STATE: IP STATUS\r\n") == "\r\nOK\r\n\r\nSTATE: IP STATUS\r\n")
        #expect(c.command("AT+CIPSRIP=1;+CIPUDPMODE=2,1;+CLPORT=2,\"UDP\",0") == "\r\nOK\r\n")
        let opened = exchange(b, "AT+CIPSTART=2,\"UDP\",\"127.0.0.1\",\(peer.port)", until: "2, CONNECT OK\r\n")
        #expect(opened == "\r\nOK\r\n\r\n2, CONNECT OK\r\n")
        #expect(exchange(b, "AT+CIPSTART=2,\"UDP\",\"127.0.0.1\",\(peer.port)", until: "CONNECT\r\n")
            .hasSuffix("\r\n2, ALREADY CONNECT\r\n"))
        #expect(c.commandToPrompt("AT+CIPSEND=2,3", prompt: "> ").hasSuffix("\r\n> "))
        c.write([0x0D, 0x0A, 0x1A])
        #expect(c.text(until: "SEND OK\r\n") == "\r\n2, SEND OK\r\n")
        let got = try #require(peer.receive())
        #expect(got.bytes == [0x0D, 0x0A, 0x1A])
        _ = c.take()
        // Extended mode: any sender, and the destination set per datagram.
        let second = UDPPeerSocket()
        second.send([7, 8], to: got.port)
        let port = try #require(b.sim.socketPort(2))
        let header = "\r\n+RECEIVE,2,2,127.0.0.1:\(second.port)\r\n"
        let pushed = Array(c.read { $0.count >= header.utf8.count + 2 })
        #expect(pushed == Array(header.utf8) + [7, 8])
        _ = c.take()
        #expect(c.command("AT+CIPUDPMODE=2,2,\"127.0.0.1\",\(second.port)") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CIPSEND=2,1", prompt: "> ").hasSuffix("> "))
        c.write([0x42])
        #expect(c.text(until: "SEND OK\r\n") == "\r\n2, SEND OK\r\n")
        #expect(second.receive()?.bytes == [0x42])
        #expect(b.sim.socketPort(2) == port)
        #expect(exchange(b, "AT+CIPCLOSE=2", until: "CLOSE OK\r\n") == "\r\n2, CLOSE OK\r\n")
        #expect(b.sim.socketPort(2) == nil)
        #expect(exchange(b, "AT+CIPSHUT", until: "SHUT OK\r\n") == "\r\nSHUT OK\r\n")
    }

    @Test func singleConnectionKeepsToItsPeerInNormalMode() throws {
        let b = try ready()
        defer { b.close() }
        let c = b.client, peer = UDPPeerSocket(), stranger = UDPPeerSocket()
        #expect(c.command("AT+CIPHEAD=1") == "\r\nOK\r\n")
        // Single-connection mode starts from IP INITIAL by itself (§8.2.2 note).
        #expect(exchange(b, "AT+CIPSTART=\"UDP\",\"127.0.0.1\",\(peer.port)", until: "CONNECT OK\r\n") == "\r\nOK\r\n\r\nCONNECT OK\r\n")
        #expect(c.commandToPrompt("AT+CIPSEND=2", prompt: "> ").hasSuffix("> "))
        c.write([0x01, 0x02])
        #expect(c.text(until: "SEND OK\r\n") == "\r\nSEND OK\r\n")
        let got = try #require(peer.receive())
        _ = c.take()
        stranger.send([9], to: got.port)  // normal mode: not the connection's peer, dropped
        #expect(b.events.wait(for: "udp-filtered").count == 1)
        peer.send([3, 4, 5], to: got.port)
        let want = Array("\r\n+IPD,3:".utf8) + [3, 4, 5]
        #expect(Array(c.read { $0.count >= want.count }) == want)
        _ = c.take()
        b.sim.closeSocketFromNetwork(0)
        #expect(c.text(until: "CLOSED\r\n") == "\r\nCLOSED\r\n")
        #expect(c.command("AT+CIPCLOSE") == "\r\nERROR\r\n")  // nothing left to close
    }

    @Test func manualReceiveAnnouncesThenReadsOneDatagram() throws {
        let b = try ready()
        defer { b.close() }
        let c = b.client, peer = UDPPeerSocket()
        #expect(c.command("AT+CIPMUX=1;+CIPRXGET=1;+CSTT;+CIICR") == "\r\nOK\r\n")
        #expect(exchange(b, "AT+CIFSR", until: "10.0.0.2\r\n").contains("10.0.0.2"))
        #expect(exchange(b, "AT+CIPSTART=0,\"UDP\",\"127.0.0.1\",\(peer.port)", until: "0, CONNECT OK\r\n").contains("CONNECT OK"))
        #expect(c.commandToPrompt("AT+CIPSEND=0,1", prompt: "> ").hasSuffix("> "))
        c.write([0x00])
        _ = c.text(until: "SEND OK\r\n")
        let got = try #require(peer.receive())
        _ = c.take()
        peer.send([1, 2, 3], to: got.port)
        peer.send([4], to: got.port)
        #expect(c.text(until: "+CIPRXGET: 1,0\r\n") == "\r\n+CIPRXGET: 1,0\r\n")  // announced once
        usleep(100_000)
        #expect(c.command("AT+CIPRXGET=4,0") == "\r\n+CIPRXGET: 4,0,4\r\n\r\nOK\r\n")
        #expect(c.command("AT+CIPRXGET=2,0,1460") == "\r\n+CIPRXGET: 2,0,3,1\r\n\u{1}\u{2}\u{3}\r\n\r\nOK\r\n")
        #expect(c.command("AT+CIPRXGET=2,0,1460") == "\r\n+CIPRXGET: 2,0,1,0\r\n\u{4}\r\n\r\nOK\r\n")
        #expect(c.command("AT+CIPRXGET=2,0,1460") == "\r\n+CIPRXGET: 2,0,0,0\r\n\r\nOK\r\n")
        b.sim.closeSocketFromNetwork(0)
        #expect(c.text(until: "CLOSED\r\n").hasSuffix("\r\n0, CLOSED\r\n"))
    }

    @Test func rebootForgetsTheToolkitState() throws {
        let b = try ready()
        defer { b.close() }
        #expect(b.client.command("AT+CIPMUX=1;+CIPHEAD=1") == "\r\nOK\r\n")
        b.sim.reboot()
        #expect(b.client.waitReady())
        #expect(b.client.command("ATE0").hasSuffix("\r\nOK\r\n"))
        #expect(b.client.command("AT+CIPMUX?;+CIPHEAD?") == "\r\n+CIPMUX: 0\r\n+CIPHEAD: 0\r\n\r\nOK\r\n")
    }

    // MARK: The driver's sim800 dialect

    @Test func driverReachesTwoPeersThroughOneSocket() throws {
        let (rig, id) = try DriverAgainstSimulatorTests.Rig.withUDPSocket("sim800")
        #expect("\(rig.driver.dialect.name)" == "sim800")
        let a = UDPPeerSocket(), z = UDPPeerSocket()
        for (k, p) in [a, a, z, a].enumerated() {
            try [UInt8(k)].withUnsafeBytes {
                try rig.driver.sendUDP(socket: id, to: BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(p.port)), payload: $0)
            }
            #expect(p.receive()?.bytes == [UInt8(k)])
        }
        z.send([0xEE], to: try #require(rig.sim.socketPort(id)))
        let from = try rig.event { e -> BearerDriver.UDPEndpoint? in
            if case .socketData(let s, let f, let d) = e, s == id, Array(d) == [0xEE] { return f }
            return nil
        }
        #expect(from == BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(z.port)))
        let sends = rig.events.named("udp-tx").map { $0.string("peer") ?? "" }
        #expect(sends == ["127.0.0.1:\(a.port)", "127.0.0.1:\(a.port)", "127.0.0.1:\(z.port)", "127.0.0.1:\(a.port)"])
    }
}
