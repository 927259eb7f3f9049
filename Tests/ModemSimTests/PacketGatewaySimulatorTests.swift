import Foundation
import Testing
@testable import ModemSim

// The packet gateway inside the simulated network: a module socket's datagrams to the opposite party leave by the
// public endpoint, and inbound ESP reaches that module socket as if from the server. Socket commands as in
// SocketBridgeTests (SIMCom +CIPSEND/+IPD with RECV FROM, Quectel +QISEND/+QIRD).
@Suite(.serialized) struct PacketGatewaySimulatorTests {
    static let esp = PacketGatewayTests.esp
    static let ike = PacketGatewayTests.ike

    struct World {
        let bench: Bench
        let server: UDPInbox
        let proxy: UDPInbox
        var pub: UDPPeer { bench.sim.packetGatewayPublicSide! }
        func close() { bench.close(); server.close(); proxy.close() }
    }

    func world(_ profile: ModemProfile) throws -> World {
        let server = try UDPInbox(), proxy = try UDPInbox()
        let config = PacketGatewayConfig(publicEndpoint: UDPPeer(host: "127.0.0.2", port: 0), ikeProxy: proxy.endpoint,
                                         oppositeParty: server.endpoint)
        return World(bench: try Bench(profile, packetGateway: config), server: server, proxy: proxy)
    }

    @Test func simcomESPBothWaysThroughThePublicEndpoint() throws {
        let w = try world(.simcom)
        defer { w.close() }
        #expect(w.bench.ready())
        let c = w.bench.client
        #expect(w.bench.events.named("packet-gateway").first?.string("public") == w.pub.description)
        c.write("AT+NETOPEN\r")
        _ = c.text(until: "+NETOPEN: 0\r\n")
        c.write("AT+CIPSRIP=1;+CIPOPEN=0,\"UDP\",,,0\r")
        _ = c.text(until: "+CIPOPEN: 0,0\r\n")
        _ = c.take()

        // Inbound ESP before the handset sent anything: its only socket takes it.
        w.server.send(Self.esp, to: w.pub)
        let head = "\r\nRECV FROM:\(w.server.endpoint)\r\n+IPD\(Self.esp.count)\r\n"
        #expect(c.read { $0.count >= head.utf8.count + Self.esp.count } == Array(head.utf8) + Self.esp)
        _ = c.take()

        let to = w.server.endpoint
        #expect(c.commandToPrompt("AT+CIPSEND=0,\(Self.esp.count),\"\(to.host)\",\(to.port)", prompt: ">") == "\r\n>")
        c.write(Self.esp)
        #expect(c.text(until: "+CIPSEND: 0,32,32\r\n").contains("+CIPSEND: 0,32,32"))
        let up = try #require(w.server.next())
        #expect(up.bytes == Self.esp)
        #expect(up.from == w.pub)                               // not the module socket's own port
        #expect(up.from.port != w.bench.sim.socketPort(0))

        w.server.send(Self.ike, to: w.pub)                      // IKE: the proxy's, never the module's
        #expect(try #require(w.proxy.next()).bytes == Self.ike)
        usleep(100_000)
        #expect(!c.take().contains("+IPD"))

        let counters = try #require(w.bench.sim.packetGatewayCounters)
        #expect(counters.espToHandset == 1 && counters.espToServer == 1 && counters.ikeToProxy == 1)
        #expect(w.bench.events.named("udp-tx").last?.string("via") == "packet-gateway \(w.pub)")
        #expect(w.bench.events.named("udp-rx").first?.string("via") == "packet-gateway")
    }

    /// SIM800 multi-connection mode, extended UDP mode: the server's ESP comes with its address in +RECEIVE, and a
    /// datagram aimed at the server with AT+CIPUDPMODE=<n>,2 leaves from the public endpoint.
    @Test func sim800ESPBothWaysThroughThePublicEndpoint() throws {
        let w = try world(.sim800)
        defer { w.close() }
        #expect(w.bench.ready())
        let c = w.bench.client
        #expect(c.command("AT+CIPMUX=1;+CSTT=\"internet\";+CIICR;+CIPSRIP=1;+CIPUDPMODE=0,1") == "\r\nOK\r\n")
        c.write("AT+CIFSR\r")
        _ = c.text(until: "10.0.0.2\r\n")
        c.write("AT+CIPSTART=0,\"UDP\",\"127.0.0.1\",9\r")
        _ = c.text(until: "0, CONNECT OK\r\n")
        _ = c.take()

        w.server.send(Self.esp, to: w.pub)
        let head = "\r\n+RECEIVE,0,\(Self.esp.count),\(w.server.endpoint)\r\n"
        #expect(c.read { $0.count >= head.utf8.count + Self.esp.count } == Array(head.utf8) + Self.esp)
        _ = c.take()

        let to = w.server.endpoint
        #expect(c.command("AT+CIPUDPMODE=0,2,\"\(to.host)\",\(to.port)") == "\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+CIPSEND=0,\(Self.esp.count)", prompt: "> ") == "\r\n> ")
        c.write(Self.esp)
        #expect(c.text(until: "SEND OK\r\n") == "\r\n0, SEND OK\r\n")
        let up = try #require(w.server.next())
        #expect(up.bytes == Self.esp && up.from == w.pub)

        w.server.send(Self.ike, to: w.pub)                      // IKE: the proxy's, never the module's
        #expect(try #require(w.proxy.next()).bytes == Self.ike)
        usleep(100_000)
        #expect(!c.take().contains("+RECEIVE"))
        let counters = try #require(w.bench.sim.packetGatewayCounters)
        #expect(counters.espToHandset == 1 && counters.espToServer == 1 && counters.ikeToProxy == 1)
    }

    @Test func quectelReadsTheServerAsSource() throws {
        let w = try world(.quectel)
        defer { w.close() }
        #expect(w.bench.ready())
        let c = w.bench.client
        #expect(c.command("AT+QICSGP=1,1,\"emu.apn\";+QIACT=1") == "\r\nOK\r\n")
        for id in 0...1 {  // two sockets: inbound ESP must go to the one that sent to the server
            c.write("AT+QIOPEN=1,\(id),\"UDP SERVICE\",\"127.0.0.1\",0,0,0\r")
            _ = c.text(until: "+QIOPEN: \(id),0\r\n")
            _ = c.take()
        }
        w.server.send(Self.esp, to: w.pub)                      // no mapping yet, two candidates: dropped
        #expect(wait { w.bench.sim.packetGatewayCounters?.droppedNoHandsetSocket == 1 })

        let to = w.server.endpoint
        #expect(c.commandToPrompt("AT+QISEND=1,\(Self.esp.count),\"\(to.host)\",\(to.port)", prompt: "> ") == "\r\n> ")
        c.write(Self.esp)
        _ = c.text(until: "SEND OK\r\n")
        _ = c.take()
        #expect(try #require(w.server.next()).from == w.pub)

        var reply = Self.esp
        reply[7] = 2
        w.server.send(reply, to: w.pub)
        #expect(c.text(until: "\"recv\",1\r\n").contains("+QIURC: \"recv\",1"))
        let rd = c.command("AT+QIRD=1")
        #expect(rd.hasPrefix("\r\n+QIRD: 32,\"\(to.host)\",\(to.port)\r\n"))
        #expect(rd.hasSuffix("\r\n\r\nOK\r\n"))
        #expect(c.command("AT+QIRD=0") == "\r\n+QIRD: 0\r\n\r\nOK\r\n")

        // The socket that sent is closed: its mapping goes with it, and one socket is left to take ESP.
        #expect(c.command("AT+QICLOSE=1") == "\r\nOK\r\n")
        w.server.send(reply, to: w.pub)
        #expect(c.text(until: "\"recv\",0\r\n").contains("+QIURC: \"recv\",0"))
    }

    /// Datagrams to anyone but the opposite party still take the loopback bridge, from the module socket's port.
    @Test func otherPeersStayOnLoopback() throws {
        let w = try world(.ublox)
        defer { w.close() }
        #expect(w.bench.ready())
        let c = w.bench.client, other = UDPPeerSocket()
        #expect(c.command("AT+USOCR=17") == "\r\n+USOCR: 0\r\n\r\nOK\r\n")
        #expect(c.commandToPrompt("AT+USOST=0,\"127.0.0.1\",\(other.port),3", prompt: "@") == "\r\n@")
        c.write([1, 2, 3])
        _ = c.text(until: "OK\r\n")
        #expect(other.receive()?.port == w.bench.sim.socketPort(0))
        #expect(w.bench.sim.packetGatewayCounters?.espToServer == 0)
    }

    func wait(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        while !condition() && Date() < deadline { usleep(5_000) }
        return condition()
    }
}
