import Foundation
import HandsetCore
import ProxyIKE
import Testing
@testable import Gateway

/// How StrongSwanNegotiator turns the plugin's records into the handset's half, and charon's words into failure
/// kinds. No charon needed (StrongSwanNegotiatorTests has the real one).
@Suite struct StrongSwanMappingTests {
    static let negotiator = StrongSwanNegotiator(
        configuration: .init(viciSocket: "/nonexistent", keySocket: "/nonexistent", serverAddress: IPAddress(192, 0, 2, 1),
                             ikeRemoteAddress: "127.0.0.1", serverID: "server.example")) { _ in nil }

    /// A record as the plugin writes it (IKE-SHARED.md contract).
    static func record(_ encr: String = "aes256gcm16", keyLength n: Int = 32, mode: String = "tunnel") throws -> KeyRecord {
        let keyIn = String(repeating: "11", count: n) + "01020304", keyOut = String(repeating: "22", count: n) + "0a0b0c0d"
        let text = ["v=1", "event=up", "ike_name=hs-00000000000000a1", "child_name=c", "ike_id=1", "child_id=2",
                    "initiator=0", "local_id=a1@handset.invalid", "remote_id=server.example", "local=10.99.0.2:4500",
                    "remote=10.99.0.1:4500", "encr=\(encr)", "mode=\(mode)", "esn=0", "spi_in=c0000001",
                    "spi_out=c0000002", "key_in=\(keyIn)", "key_out=\(keyOut)", "local_ts=10.201.0.5/32",
                    "remote_ts=10.200.0.1/32 udp/7", "soft=100", "hard=200"].joined(separator: "\n") + "\n"
        return try KeyRecord.parse(Array(text.utf8))
    }

    /// The handset sends on spi_out with key_out and receives on spi_in; the salt is the key's last 4 octets,
    /// in network order (RFC 4106 §4: the salt is the first 4 octets of the nonce).
    @Test func aRecordBecomesTheHandsetsHalf() throws {
        guard case .success(let t) = Self.negotiator.transfer(from: try Self.record(), selector: nil) else {
            Issue.record("not mapped"); return
        }
        #expect(t.outboundSPI == 0xC000_0002 && t.inboundSPI == 0xC000_0001)
        #expect(t.outboundSalt == 0x0A0B_0C0D && t.inboundSalt == 0x0102_0304)
        #expect(t.outboundKey == [UInt8](repeating: 0x22, count: 32).withUnsafeBytes { KeyBytes($0) })
        #expect(t.inboundKey == [UInt8](repeating: 0x11, count: 32).withUnsafeBytes { KeyBytes($0) })
        #expect(t.peer == IPAddress(192, 0, 2, 1) && t.peerPort == 4500 && t.tunnel && t.algorithm == .aesGCM)
        #expect(t.remote == IPAddress(10, 200, 0, 1), "the service behind the server, not the server")
        #expect(t.proto == IPProto.udp && t.remotePort == 7 && t.localPort == 0 && t.softSeconds == 100 && t.hardSeconds == 200)
    }

    @Test func everyAlgorithmMaps() throws {
        if case .success(let t) = Self.negotiator.transfer(from: try Self.record("chacha20poly1305"), selector: nil) {
            #expect(t.algorithm == .chacha20Poly1305 && t.keyLength == 32)
        } else {
            Issue.record("chacha20poly1305 not mapped")
        }
        // AES-128-GCM: a 16-octet key, the salt right after it (RFC 4106 §8.1: KEYMAT is key || salt).
        guard case .success(let t) = Self.negotiator.transfer(from: try Self.record("aes128gcm16", keyLength: 16), selector: nil) else {
            Issue.record("aes128gcm16 not mapped"); return
        }
        #expect(t.algorithm == .aesGCM && t.keyLength == 16)
        #expect(t.outboundSalt == 0x0A0B_0C0D && t.inboundSalt == 0x0102_0304)
        #expect(t.outboundKey == [UInt8](repeating: 0x22, count: 16).withUnsafeBytes { KeyBytes($0) })
        #expect(t.outboundKey.upperHalfIsZero && t.inboundKey.upperHalfIsZero)
    }

    /// The record's mode is sa-transfer's flag bit 2 on the wire (docs/key-delegation.md §4): set for tunnel, clear
    /// for transport, which names no remote address (a transport SA protects the peer itself).
    @Test func theRecordsModeIsTheTunnelFlag() throws {
        func flags(_ mode: String) throws -> (UInt8, KDSATransfer)? {
            guard case .success(let t) = Self.negotiator.transfer(from: try Self.record(mode: mode), selector: nil) else { return nil }
            var buf = [UInt8](repeating: 0, count: 256)
            let ok = buf.withUnsafeMutableBytes { b -> Bool in
                var w = WireWriter(b)
                KDBody.saTransfer(t).encode(into: &w)
                return w.ok
            }
            return ok ? (buf[2], t) : nil  // request id (2 octets), then the flags
        }
        let tunnel = try #require(try flags("tunnel")), transport = try #require(try flags("transport"))
        #expect(tunnel.0 & 4 == 4 && tunnel.1.tunnel)
        #expect(transport.0 & 4 == 0 && !transport.1.tunnel && transport.1.remote == nil)
    }

    /// A virtual IP is a tunnel-mode address: with `virtualIP`, a transport-mode record is refused and counted, and
    /// no address comes of it (its selectors are the IKE endpoints, not a lease from the server's pool).
    @Test func transportModeWithAVirtualIPIsRefused() throws {
        var c = Self.negotiator.config
        c.virtualIP = true
        let n = StrongSwanNegotiator(configuration: c) { _ in nil }
        guard case .failure(let f) = n.virtualIP(of: try Self.record(mode: "transport"), device: 0xA1) else {
            Issue.record("a transport record gave an address"); return
        }
        #expect(f == .refused("transport mode with a virtual IP") && f.status == .denied)
        #expect(n.counters.transportWithVirtualIP == 1 && n.counters.virtualIPRefused == 0)
        #expect(n.virtualIP(of: try Self.record(), device: 0xA1) == .success(IPAddress(10, 201, 0, 5)))
        #expect(n.counters.transportWithVirtualIP == 1)
        // Without a virtual IP, the same record maps (no address is bound).
        #expect(Self.negotiator.virtualIP(of: try Self.record(mode: "transport"), device: 0xA1) == .success(nil))
    }

    @Test func connectionNamesCarryTheDevice() {
        #expect(StrongSwanNegotiator.connectionName(0xA1) == "hs-00000000000000a1")
        #expect(StrongSwanNegotiator.device(ofConnection: "hs-00000000000000a1") == 0xA1)
        #expect(StrongSwanNegotiator.device(ofConnection: "hs-a1") == nil)
        #expect(StrongSwanNegotiator.device(ofConnection: "hs-0000000000000zz1") == nil)
    }

    /// charon 5.9.8's own log lines for each case (as seen in the lab's proxy log).
    @Test(arguments: [
        (["received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built"], "establishing CHILD_SA 'x' failed", NegotiationFailure.noProposalChosen),
        (["received NO_PROPOSAL_CHOSEN notify error"], "", .noProposalChosen),
        (["received AUTHENTICATION_FAILED notify error"], "", .authenticationFailed),
        (["no shared key found for 'a@b' - 'server.example'"], "", .authenticationFailed),
        // X.509: a server certificate that does not chain to the configured CA (lab, StrongSwanCertificateTests).
        (["no issuer certificate found for \"CN=server.example\"", "no trusted ED25519 public key found for 'server.example'"],
         "", .authenticationFailed),
        (["signature validation failed, looking for another key", "generating INFORMATIONAL request 2 [ N(AUTH_FAILED) ]"],
         "", .authenticationFailed),
        // A server child whose selectors do not cover the flow (lab: a `mode = transport` child with subnets).
        (["received TS_UNACCEPTABLE notify, no CHILD_SA built"], "establishing CHILD_SA 'x' failed",
         .refused("the server accepts none of the flow's traffic selectors (TS_UNACCEPTABLE)")),
        (["sending packet: from 10.99.0.2[500] to 10.99.0.1[4500] (240 bytes)"], "CHILD_SA 'x' not established after 3000ms", .timeout),
    ])
    func charonsWordsGiveTheKind(lines: [String], errmsg: String, kind: NegotiationFailure) {
        #expect(StrongSwanNegotiator.classify(log: lines, errmsg: errmsg) == kind)
    }
}
