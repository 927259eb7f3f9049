import Testing
@testable import HandsetCore

/// Every message type round-trips: encode, seal, open, decode, compare (docs/key-delegation.md §4).
@Suite struct KDBodyCodecTests {
    static let key = [UInt8](repeating: 0x42, count: 32).withUnsafeBytes { KeyBytes($0) }
    static let data: [UInt8] = Array("payload bytes".utf8)

    static func bodies(_ d: UnsafeRawBufferPointer) -> [KDBody] {
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(192, 0, 2, 1), localPort: 5000, remotePort: 7)
        let v6 = TrafficSelector(local: IPAddress(v6High: 0x2001_0db8, low: 2), remote: IPAddress(v6High: 0x2001_0db8, low: 1),
                                 localPort: 0, remotePort: 443)
        let t = KDSATransfer(requestID: 9, algorithm: .chacha20Poly1305, tunnel: true, esn: true, implicitIV: true,
                             outboundSPI: 0x1111, outboundKey: key, outboundSalt: 0xA, inboundSPI: 0x2222, inboundKey: key,
                             inboundSalt: 0xB, peer: IPAddress(v6High: 0x2001_0db8, low: 1), peerPort: 4500, prefix: 64,
                             proto: IPProto.udp, localPort: 1, remotePort: 2, softSeconds: 10, hardSeconds: 20)
        // Tunnel to a server whose service sits behind it (flag bit 6: the pair's remote address).
        var v4Tunnel = t
        v4Tunnel.peer = IPAddress(10, 99, 0, 1)
        v4Tunnel.remote = IPAddress(10, 200, 0, 1)
        v4Tunnel.prefix = 32
        return [
            .login(KDLogin(hello: 0x1122_3344_5566_7788, firmware: 3, capabilities: 7)),
            .loginAck(KDLoginAck(hello: 1, newEpoch: 2, newKey: key, gatewayTime: 1_800_000_000)),
            .keyConfirm(hello: 77),
            .confirmAck(epoch: 2),
            .keyRequest(KDKeyRequest(requestID: 5, template: 1, selector: sel)),
            .keyRequest(KDKeyRequest(requestID: 6, template: 2, selector: v6)),
            .saTransfer(t),
            .saTransfer(v4Tunnel),
            .saAck(KDSAAck(requestID: 9, outboundSPI: 0x1111, status: .denied)),
            .saDelete(KDSADelete(outboundSPI: 0x1111, inboundSPI: 0x2222)),
            .secretData(channel: 4, data: d),
            .fetchRequest(requestID: 8, url: d),
            .fetchResponse(requestID: 8, httpStatus: 200, truncated: true, body: d),
            .error(KDError(refType: 0x10, refCounter: 99, status: .counterHigh, lastAccepted: 98)),
        ]
    }

    /// Compares two bodies through their encodings (views compare by content).
    static func encoded(_ b: KDBody) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: KD.maxMessage)
        let n = out.withUnsafeMutableBytes { o -> Int in
            var w = WireWriter(o)
            b.encode(into: &w)
            return w.ok ? w.count : -1
        }
        return n < 0 ? [] : Array(out[0..<n])
    }

    @Test func everyTypeRoundTripsThroughTheEnvelope() throws {
        var keys = DeliveryKeys()
        #expect(Self.key.withBytes { keys.derive(deviceKey: $0, deviceID: 7, epoch: 3) })
        try Self.data.withUnsafeBytes { d in
            let all = Self.bodies(d)
            #expect(Set(all.map(\.type.rawValue)).count == 12, "all twelve message types are covered")
            for (i, body) in all.enumerated() {
                let plain = Self.encoded(body)
                #expect(!plain.isEmpty)
                for dir in [KDDirection.up, .down] {
                    let h = KDHeader(type: body.type, epoch: 3, counter: UInt64(100 + i), deviceID: dir == .up ? 7 : 0)
                    var wire = [UInt8](repeating: 0, count: KD.maxMessage)
                    let n = try #require(plain.withUnsafeBytes { p in wire.withUnsafeMutableBytes { keys.seal(h, direction: dir, body: p, into: $0) } })
                    #expect(n == dir.headerLength + plain.count + KD.tagLength)
                    let sealed = Array(wire[0..<n])
                    let parsed = try #require(sealed.withUnsafeBytes { KDHeader.parse($0, direction: dir) })
                    #expect(parsed == h)
                    var opened = [UInt8](repeating: 0, count: KD.maxMessage)
                    let m = try #require(sealed.withUnsafeBytes { w in opened.withUnsafeMutableBytes { keys.open(w, header: parsed, direction: dir, into: $0) } })
                    let again = try #require(opened[0..<m].withUnsafeBytes { KDBody.decode(parsed.type, $0) })
                    #expect(Self.encoded(again) == plain, "type \(body.type) did not round-trip")
                }
            }
        }
    }

    @Test func fixedBodiesRefuseTrailingBytesAndTruncation() {
        Self.data.withUnsafeBytes { d in
            for body in Self.bodies(d) {
                let plain = Self.encoded(body)
                let variable = [KDMessageType.secretData, .fetchRequest, .fetchResponse].contains(body.type)
                let longer = plain + [0]
                #expect((longer.withUnsafeBytes { KDBody.decode(body.type, $0) } == nil) != variable)
                if !variable {
                    for cut in 0..<plain.count {
                        #expect(plain[0..<cut].withUnsafeBytes { KDBody.decode(body.type, $0) } == nil, "\(body.type) cut at \(cut)")
                    }
                }
            }
        }
    }

    /// §4: flag bit 6 and the remote address after the lifetimes; 107 octets with IPv4, so still one SMS.
    @Test func theRemoteAddressIsFlaggedAndFitsOneSMS() throws {
        var t = KDSATransfer(requestID: 1, tunnel: true, outboundSPI: 0x1111, outboundKey: Self.key, outboundSalt: 1,
                             inboundSPI: 0x2222, inboundKey: Self.key, inboundSalt: 2, peer: IPAddress(10, 99, 0, 1),
                             prefix: 32, proto: IPProto.udp, localPort: 0, remotePort: 7, softSeconds: 1, hardSeconds: 2)
        #expect(Self.encoded(.saTransfer(t)).count == 103)
        t.remote = IPAddress(10, 200, 0, 1)
        let b = Self.encoded(.saTransfer(t))
        #expect(b.count == 107 && b[2] == 4 | 64 && Array(b[103...]) == [10, 200, 0, 1])
        #expect(KD.downlinkHeader + b.count + KD.tagLength + 7 <= 140)
        // The flag without the address is truncation, refused.
        #expect(Array(b[0..<103]).withUnsafeBytes { KDBody.decode(.saTransfer, $0) } == nil)
        let back = b.withUnsafeBytes { p -> KDSATransfer? in
            guard case .saTransfer(let x)? = KDBody.decode(.saTransfer, p) else { return nil }
            return x
        }
        #expect(back?.remote == IPAddress(10, 200, 0, 1) && back?.selectorPattern.remote == IPAddress(10, 200, 0, 1))
    }

    /// §4: algorithm 2 in flag bits 0-1 is AES-128-GCM, its keys in the first 16 octets of each 32-octet field and
    /// the rest zero; a non-zero rest, and algorithm 3, are refused.
    @Test func aes128KeysTravelInTheFirstHalfOfTheirField() throws {
        let k16 = [UInt8](repeating: 0x42, count: 16).withUnsafeBytes { KeyBytes($0) }
        let t = KDSATransfer(requestID: 1, keyLength: 16, outboundSPI: 0x1111, outboundKey: k16, outboundSalt: 1,
                             inboundSPI: 0x2222, inboundKey: k16, inboundSalt: 2, peer: IPAddress(10, 99, 0, 1),
                             prefix: 32, proto: IPProto.udp, localPort: 0, remotePort: 7, softSeconds: 1, hardSeconds: 2)
        var b = Self.encoded(.saTransfer(t))
        #expect(b.count == 103 && b[2] == 2)
        #expect(Array(b[7..<23]) == [UInt8](repeating: 0x42, count: 16) && Array(b[23..<39]) == [UInt8](repeating: 0, count: 16))
        func decode(_ bytes: [UInt8]) -> KDSATransfer? {
            bytes.withUnsafeBytes { p in
                guard case .saTransfer(let x)? = KDBody.decode(.saTransfer, p) else { return nil }
                return x
            }
        }
        let back = decode(b)
        #expect(back?.algorithm == .aesGCM && back?.keyLength == 16 && back?.outboundKey == k16)
        b[30] = 1  // inside the outbound key field's unused half
        #expect(decode(b) == nil)
        b[30] = 0
        b[2] = 3
        #expect(decode(b) == nil)
    }
}
