import Foundation
import Testing
@testable import ModemSim

// The packet-gateway relay with real UDP sockets on loopback. The "server" is 127.0.0.1, the handset's public
// endpoint 127.0.0.2 (all of 127/8 is local on Linux), the proxy charon's NAT-T socket another 127.0.0.1 port.
// Demultiplexing rule from RFC 3948: §2.1 an ESP SPI is never zero, §2.2 IKE on the NAT-T port carries a
// 4-octet zero non-ESP marker in the SPI's place, §2.3 a NAT-keepalive is the single octet 0xFF.
@Suite(.serialized) struct PacketGatewayTests {
    static let ike: [UInt8] = [0, 0, 0, 0] + Array(repeating: 0x11, count: 8) + Array(repeating: 0, count: 8)
        + [0x21, 0x20, 0x22, 0x08] + [0, 0, 0, 0] + [0, 0, 0, 28] // marker + 28-octet IKEv2 header (RFC 7296 §3.1)
    static let esp: [UInt8] = [0xC0, 0x01, 0x02, 0x03, 0, 0, 0, 1] + Array(repeating: 0xAB, count: 24)

    @Test(arguments: [
        ([0xFF], NATTPayload.keepalive),
        ([], .tooShort), ([0x00], .tooShort), ([0xFF, 0xFF], .tooShort), ([1, 2, 3], .tooShort),
        ([0, 0, 0, 0], .tooShort),                                   // a marker with no IKE header
        ([0, 0, 0, 0] + Array(repeating: 1, count: 27), .tooShort),  // one octet short of an IKE header
        ([0, 0, 0, 0] + Array(repeating: 1, count: 28), .ike),
        ([0, 0, 0, 1, 0, 0, 0], .tooShort),                          // SPI without a full sequence number
        ([0, 0, 0, 1, 0, 0, 0, 1], .esp),                            // smallest nonzero SPI: ESP, not a marker
        ([0xFF, 0, 0, 0, 0, 0, 0, 0], .esp),                         // 0xFF leading a longer datagram is an SPI
    ] as [([UInt8], NATTPayload)])
    func classification(bytes: [UInt8], kind: NATTPayload) {
        #expect(NATTPayload.classify(bytes) == kind)
    }

    @Test func endpointParsing() throws {
        #expect(try PacketGatewayConfig.endpoint("10.99.0.2:4500") == UDPPeer(host: "10.99.0.2", port: 4500))
        #expect(try PacketGatewayConfig.endpoint("127.0.0.1:0", allowZeroPort: true).port == 0)
        for bad in ["10.99.0.2", "10.99.0.2:0", "10.99.0.2:65536", "host:4500", "10.99.0.2:45:00", ":4500", "::1:4500"] {
            #expect(throws: PacketGatewayError.badEndpoint(bad)) { try PacketGatewayConfig.endpoint(bad) }
        }
    }

    @Test func bindFailureIsTyped() {
        // 192.0.2.1 (TEST-NET-1) is no address of this host: bind fails, nothing is sent anywhere.
        let config = PacketGatewayConfig(publicEndpoint: UDPPeer(host: "192.0.2.1", port: 4500),
                                         ikeProxy: UDPPeer(host: "127.0.0.1", port: 1), oppositeParty: UDPPeer(host: "127.0.0.1", port: 2))
        #expect(throws: PacketGatewayError.self) {
            _ = try PacketGateway(config: config, queue: DispatchQueue(label: "t")) { _, _ in true }
        }
        do {
            _ = try PacketGateway(config: config, queue: DispatchQueue(label: "t")) { _, _ in true }
        } catch {
            guard case .cannotBind(let endpoint, let reason) = error else { Issue.record("\(error)"); return }
            #expect(endpoint == "192.0.2.1:4500")
            #expect(reason.contains("bind 192.0.2.1:4500"))
        }
    }

    /// Both directions of IKE and ESP, the keepalive, and what the server sees as the source.
    @Test func routesByMarkerBothWays() throws {
        let lab = try RelayLab()
        defer { lab.close() }
        let relay = lab.relay, pub = relay.publicSide

        lab.server.send(Self.ike, to: pub)                      // server-initiated IKE
        let atProxy = try #require(lab.proxy.next())
        #expect(atProxy.bytes == Self.ike)
        #expect(atProxy.from == relay.proxySide)                // the proxy sees the relay's proxy side

        var reply = Self.ike
        reply[20] = 0x20                                        // a response: different octets, same length
        lab.proxy.send(reply, to: relay.proxySide)
        let atServer = try #require(lab.server.next())
        #expect(atServer.bytes == reply)
        #expect(atServer.from == pub)                           // the proxy's IKE from the handset's public endpoint

        lab.server.send([0xFF], to: pub)
        #expect(try #require(lab.proxy.next()).bytes == [0xFF]) // the keepalive stays with the proxy
        #expect(lab.handset.isEmpty)

        lab.server.send(Self.esp, to: pub)
        let down = try #require(lab.handset.next())
        #expect(down.bytes == Self.esp)
        #expect(down.from == lab.server.endpoint)               // appears to come from the server
        #expect(lab.proxy.next(timeout: 0.2) == nil)            // ESP never reaches the proxy

        #expect(relay.carriesUplink(to: lab.server.endpoint))
        #expect(!relay.carriesUplink(to: UDPPeer(host: "127.0.0.1", port: lab.server.endpoint.port + 1)))
        #expect(relay.sendUp(Self.esp, to: lab.server.endpoint))
        let up = try #require(lab.server.next())
        #expect(up.bytes == Self.esp)
        #expect(up.from == pub)                                 // ESP and IKE share one public address:port

        #expect(wait { relay.counters.espToServer == 1 })       // counted after the send returns
        let c = relay.counters
        #expect(c.ikeToProxy == 1 && c.ikeToServer == 1 && c.keepalivesToProxy == 1)
        #expect(c.espToHandset == 1 && c.espToServer == 1)
        #expect(c.droppedTooShort == 0 && c.droppedUnknownSource == 0 && c.droppedWrongDirection == 0)
    }

    /// Malformed, misdirected and undeliverable datagrams are counted and go nowhere; the relay keeps working.
    @Test func dropsAreCounted() throws {
        let lab = try RelayLab(handsetTakes: false)
        defer { lab.close() }
        let relay = lab.relay, pub = relay.publicSide
        for short in [[], [0x00], [0xFF, 0xFF], [0, 0, 0, 0, 1], [9, 9, 9, 9, 9, 9, 9]] as [[UInt8]] {
            lab.server.send(short, to: pub)
        }
        lab.server.send(Self.esp, to: pub)                      // no handset socket takes it
        let stranger = try UDPInbox()
        stranger.send(Self.ike, to: relay.proxySide)            // not the proxy's IKE endpoint
        lab.proxy.send(Self.esp, to: relay.proxySide)           // the proxy must never send ESP
        lab.proxy.send([1], to: relay.proxySide)
        #expect(relay.sendUp(Self.ike, to: lab.server.endpoint)) // "sent", as a network would say, but dropped
        #expect(relay.sendUp([0xC0], to: lab.server.endpoint))
        stranger.close()
        #expect(wait { relay.counters.droppedNoHandsetSocket == 1 && relay.counters.droppedUnknownSource == 1 })
        #expect(wait { relay.counters.droppedTooShort == 7 && relay.counters.droppedWrongDirection == 2 })
        #expect(lab.proxy.next(timeout: 0.2) == nil)
        #expect(lab.server.next(timeout: 0.2) == nil)
        #expect(lab.handset.received == 1)                      // asked once (the ESP), refused

        lab.server.send(Self.ike, to: pub)                      // still routes afterwards
        #expect(try #require(lab.proxy.next()).bytes == Self.ike)
        // The relay counts after its send returns: the datagram can arrive before the count (seen once under ASan).
        #expect(wait { relay.counters.ikeToProxy == 1 })
        let c = relay.counters
        #expect(c.espToHandset == 0 && c.espToServer == 0 && c.ikeToServer == 0)
    }

    /// The proxy's IKE follows the server to the address:port it last used.
    @Test func followsTheServersLastEndpoint() throws {
        let lab = try RelayLab()
        defer { lab.close() }
        let moved = try UDPInbox()                              // the same host (127.0.0.1), another port
        defer { moved.close() }
        #expect(lab.relay.serverEndpoint == lab.server.endpoint)
        moved.send(Self.ike, to: lab.relay.publicSide)
        _ = try #require(lab.proxy.next())
        #expect(lab.relay.serverEndpoint == moved.endpoint)
        lab.proxy.send(Self.ike, to: lab.relay.proxySide)
        #expect(try #require(moved.next()).from == lab.relay.publicSide)
        #expect(lab.server.next(timeout: 0.2) == nil)
    }

    /// A server initiating from port 500 sends IKE without the marker (RFC 7296 §2.23): the proxy gets it with the
    /// marker, and the answer goes back to port 500 without it. Binding port 500 needs root.
    @Test(.enabled(if: getuid() == 0, "binding UDP port 500 needs root"))
    func serverInitiatingFromPort500() throws {
        let server = try UDPInbox(address: "127.0.0.3", port: 500)
        defer { server.close() }
        let proxy = try UDPInbox()
        defer { proxy.close() }
        let config = PacketGatewayConfig(publicEndpoint: UDPPeer(host: "127.0.0.2", port: 0), ikeProxy: proxy.endpoint,
                                         oppositeParty: UDPPeer(host: "127.0.0.3", port: 4500))
        let relay = try PacketGateway(config: config, queue: DispatchQueue(label: "relay")) { _, _ in true }
        defer { relay.close() }
        let bare = Array(Self.ike.dropFirst(4))                 // IKE_SA_INIT as sent from port 500
        server.send(bare, to: relay.publicSide)
        let atProxy = try #require(proxy.next())
        #expect(atProxy.bytes == Self.ike)                      // with the marker the NAT-T socket expects
        proxy.send(Self.ike, to: relay.proxySide)
        let back = try #require(server.next())
        #expect(back.bytes == bare && back.from == relay.publicSide)
        server.send([1, 2, 3], to: relay.publicSide)            // too short for an IKE header
        #expect(wait { relay.counters.droppedTooShort == 1 })
        #expect(relay.counters.ikeToProxy == 1 && relay.counters.ikeToServer == 1 && relay.counters.espToHandset == 0)
    }

    func wait(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        while !condition() && Date() < deadline { usleep(5_000) }
        return condition()
    }
}

/// A relay between a server socket, a proxy socket and a recorded handset.
final class RelayLab {
    let server: UDPInbox
    let proxy: UDPInbox
    let handset: HandsetTap
    let relay: PacketGateway

    init(handsetTakes: Bool = true) throws {
        server = try UDPInbox()
        proxy = try UDPInbox()
        let tap = HandsetTap(takes: handsetTakes)
        handset = tap
        let config = PacketGatewayConfig(publicEndpoint: UDPPeer(host: "127.0.0.2", port: 0), ikeProxy: proxy.endpoint,
                                         oppositeParty: server.endpoint)
        relay = try PacketGateway(config: config, queue: DispatchQueue(label: "relay")) { bytes, from in
            tap.take(bytes, from: from)
        }
    }

    func close() { relay.close(); server.close(); proxy.close() }
}

/// Stands in for the module socket: records what the relay hands down.
final class HandsetTap: @unchecked Sendable {
    let inbox = Inbox()
    let takes: Bool
    private let lock = NSLock()
    private var asked = 0
    var received: Int { lock.withLock { asked } }
    init(takes: Bool) { self.takes = takes }
    func take(_ bytes: [UInt8], from: UDPPeer) -> Bool {
        lock.withLock { asked += 1 }
        if takes { inbox.put(bytes, from) }
        return takes
    }
    var isEmpty: Bool { inbox.next(timeout: 0.2) == nil }
    func next() -> (bytes: [UInt8], from: UDPPeer)? { inbox.next(timeout: 2) }
}

/// A real UDP socket on 127.0.0.1 that keeps what arrives, with the source.
final class UDPInbox: @unchecked Sendable {
    private let inbox = Inbox()
    private var socket: LoopbackUDPSocket!
    let endpoint: UDPPeer

    init(address: String = "127.0.0.1", port: Int = 0) throws {
        let inbox = self.inbox
        socket = try LoopbackUDPSocket(address: address, port: port, queue: DispatchQueue(label: "inbox")) { b, from in
            inbox.put(b, from)
        }
        endpoint = UDPPeer(host: address, port: socket.port)
    }

    func send(_ bytes: [UInt8], to peer: UDPPeer) { socket.send(bytes, to: peer) }
    func next(timeout: TimeInterval = 2) -> (bytes: [UInt8], from: UDPPeer)? { inbox.next(timeout: timeout) }
    func close() { socket.close() }
}

final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [([UInt8], UDPPeer)] = []
    func put(_ b: [UInt8], _ from: UDPPeer) { lock.withLock { items.append((b, from)) } }
    func next(timeout: TimeInterval) -> (bytes: [UInt8], from: UDPPeer)? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let first = lock.withLock({ items.isEmpty ? nil : items.removeFirst() }) { return first }
            usleep(2_000)
        } while Date() < deadline
        return nil
    }
}
