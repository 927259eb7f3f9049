import Foundation
import Testing
@testable import ModemSim

// Module UDP sockets bridged to real loopback sockets. Command and URC forms from the SIMCom SIM7500/SIM7600 AT manual
// (TCP/IP: +NETOPEN, +CIPOPEN, +CIPSEND, +IPD, +CIPCLOSE), the Quectel BG96 TCP/IP AT manual (+QIOPEN "UDP SERVICE",
// +QISEND, +QIURC "recv", +QIRD) and the u-blox SARA-R4 AT manual (+USOCR, +USOST, +UUSORF, +USORF, +USOCL).
@Suite(.serialized) struct SocketBridgeTests {
    static let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0x1A, 0x1B, 0xFF, 0x2B] // CR, LF, Ctrl-Z, ESC survive

    @Test func simcomRoundTrip() throws {
        let b = try Bench(.simcom)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client, peer = UDPPeerSocket()
        c.write("AT+CIPOPEN=0,\"UDP\",,,0\r")
        #expect(c.text(until: "+CIPOPEN: 0,2\r\n") == "\r\nOK\r\n\r\n+CIPOPEN: 0,2\r\n") // network not open yet
        #expect(b.sim.socketPort(0) == nil)
        _ = c.take()
        c.write("AT+NETOPEN\r")
        #expect(c.text(until: "+NETOPEN: 0\r\n") == "\r\nOK\r\n\r\n+NETOPEN: 0\r\n")
        _ = c.take()
        c.write("AT+CIPOPEN=0,\"UDP\",,,0\r")
        #expect(c.text(until: "+CIPOPEN: 0,0\r\n") == "\r\nOK\r\n\r\n+CIPOPEN: 0,0\r\n")
        _ = c.take()
        #expect(c.commandToPrompt("AT+CIPSEND=0,\(Self.binary.count),\"127.0.0.1\",\(peer.port)", prompt: ">") == "\r\n>")
        c.write(Self.binary)
        #expect(c.text(until: "+CIPSEND: 0,7,7\r\n") == "\r\nOK\r\n\r\n+CIPSEND: 0,7,7\r\n")
        let got = try #require(peer.receive())
        #expect(got.bytes == Self.binary)
        #expect(got.port == b.sim.socketPort(0))
        _ = c.take()
        peer.send(Self.binary, to: got.port)
        let head = "\r\nRECV FROM:127.0.0.1:\(peer.port)\r\n+IPD7\r\n"
        let rx = c.read { $0.count >= head.utf8.count + 7 }
        #expect(rx == Array(head.utf8) + Self.binary)
        _ = c.take()
        c.write("AT+CIPCLOSE=0\r")
        #expect(c.text(until: "+CIPCLOSE: 0,0\r\n") == "\r\nOK\r\n\r\n+CIPCLOSE: 0,0\r\n")
        #expect(b.events.named("udp-tx").first?.int("len") == 7)
        #expect(b.events.named("udp-rx").first?.string("peer") == "127.0.0.1:\(peer.port)")
        #expect(b.events.named("socket-close").first?.string("by") == "module")
    }

    @Test func quectelRoundTrip() throws {
        let b = try Bench(.quectel)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client, peer = UDPPeerSocket()
        c.write("AT+QIOPEN=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,0,0\r")
        #expect(c.text(until: "+QIOPEN: 0,561\r\n") == "\r\nOK\r\n\r\n+QIOPEN: 0,561\r\n") // context not active
        _ = c.take()
        #expect(c.command("AT+QICSGP=1,1,\"emu.apn\";+QIACT=1") == "\r\nOK\r\n")
        #expect(c.command("AT+QIACT?").contains("+QIACT: 1,1,1,\"10.0.0.2\""))
        c.write("AT+QIOPEN=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,0,0\r")
        #expect(c.text(until: "+QIOPEN: 0,0\r\n") == "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n")
        _ = c.take()
        #expect(c.commandToPrompt("AT+QISEND=0,7,\"127.0.0.1\",\(peer.port)", prompt: "> ") == "\r\n> ")
        c.write(Self.binary)
        #expect(c.text(until: "SEND OK\r\n") == "\r\nSEND OK\r\n")
        let got = try #require(peer.receive())
        #expect(got.bytes == Self.binary)
        _ = c.take()
        peer.send(Self.binary, to: got.port)
        #expect(c.text(until: "\"recv\",0\r\n") == "\r\n+QIURC: \"recv\",0\r\n")
        let rd = c.command("AT+QIRD=0")
        #expect(rd == "\r\n+QIRD: 7,\"127.0.0.1\",\(peer.port)\r\n" + String(decoding: Self.binary, as: UTF8.self) + "\r\n\r\nOK\r\n")
        #expect(c.command("AT+QIRD=0") == "\r\n+QIRD: 0\r\n\r\nOK\r\n")
        #expect(c.command("AT+QIRD=0,0") == "\r\n+QIRD: 7,7,0\r\n\r\nOK\r\n")
        #expect(c.command("AT+QICLOSE=0") == "\r\nOK\r\n")
        #expect(b.sim.socketPort(0) == nil)
    }

    @Test func ubloxRoundTrip() throws {
        let b = try Bench(.ublox)
        defer { b.close() }
        #expect(b.ready())
        let c = b.client, peer = UDPPeerSocket()
        #expect(c.command("AT+USOCR=6") == "\r\nERROR\r\n") // TCP is not bridged
        #expect(c.command("AT+CMEE=1;+USOCR=6") == "\r\n+CME ERROR: 4\r\n")
        #expect(c.command("AT+USOCR=17") == "\r\n+USOCR: 0\r\n\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+USOST=0,\"127.0.0.1\",\(peer.port),7", prompt: "@") == "\r\n@")
        c.write(Self.binary)
        #expect(c.text(until: "OK\r\n") == "\r\n+USOST: 0,7\r\n\r\nOK\r\n")
        let got = try #require(peer.receive())
        #expect(got.bytes == Self.binary)
        _ = c.take()
        peer.send(Array("world".utf8), to: got.port)
        #expect(c.text(until: "+UUSORF: 0,5\r\n") == "\r\n+UUSORF: 0,5\r\n")
        #expect(c.command("AT+USORF=0,0") == "\r\n+USORF: 0,5\r\n\r\nOK\r\n")
        #expect(c.command("AT+USORF=0,5") == "\r\n+USORF: 0,\"127.0.0.1\",\(peer.port),5,\"world\"\r\n\r\nOK\r\n")
        peer.send(Array("hex".utf8), to: got.port)
        _ = c.text(until: "+UUSORF: 0,3\r\n")
        #expect(c.command("AT+UDCONF=1,1;+USORF=0,3").contains(",3,\"686578\"")) // hex mode
        #expect(c.command("AT+USOCL=0") == "\r\nOK\r\n")
        #expect(c.command("AT+USOCL=0") == "\r\n+CME ERROR: 50\r\n") // already closed; nothing else changes
    }

    @Test func genericHasNoSockets() throws {
        let b = try Bench(.generic)
        defer { b.close() }
        #expect(b.ready())
        for cmd in ["AT+NETOPEN", "AT+QIACT=1", "AT+USOCR=17"] { #expect(b.client.command(cmd) == "\r\nERROR\r\n") }
        #expect(b.events.named("socket-open").isEmpty)
    }
}
