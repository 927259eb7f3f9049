import CHandsetShim

/// One published ESP known answer. Hex fields may hold whitespace and newlines (the sources print 16 bytes a
/// line). `seq` is the full 64-bit sequence number; `payload` is the ESP payload data, before padding; `packet`
/// runs from the SPI through the ICV.
public struct ESPVector: Sendable {
    public let name: StaticString
    public let algorithm: ESPAlgorithm
    public let salt: UInt32
    public let spi: UInt32
    public let seq: UInt64
    public let esn: Bool
    public let iv: UInt64
    public let nextHeader: UInt8
    public let key: StaticString
    public let payload: StaticString
    public let packet: StaticString
}

extension SelfTest {
    static func runVectors(_ r: inout Report) {
        for v in espVectors {
            r.record(v.name, "seal", sealMatches(v))
            r.record(v.name, "open", openMatches(v))
            r.record(v.name, "tampered ICV rejected", rejectsTamperedICV(v))
        }
        r.record("RFC 4231 4.3 HMAC-SHA-256 case 2", "", hmacMatches())
        r.record("RFC 5869 A.1 HKDF-SHA-256 case 1", "", hkdfMatches())
    }

    // The gcm-test-01 vectors are whole IP packets; here each is cut into ESP payload (up to the padding) and
    // next header. Cases 4 (SPI 0, reserved) and 7 (AES-192) are left out: the SA table refuses both.
    // The GCM salt is the last 4 bytes of the draft's nonce (RFC 4106 §4); the IV is the rest.
    static let espVectors: [ESPVector] = [
        // draft-mcgrew-gcm-test-01 §4, test case 1: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 1", algorithm: .aesGCM, salt: 0x2e443b68, spi: 0x00004321,
            seq: 0x8765432100000000, esn: true, iv: 0x4956ed7e3b244cfe, nextHeader: 1,
            key: "4c80cdefbb5d10da906ac73c3613a634",
            payload: """
            45000048699a000080114db7c0a80102
            c0a801010a9bf15638d3010000010000
            00000000045f736970045f7564700373
            69700963796265726369747902646b00
            00210001
            """,
            packet: """
            00004321000000004956ed7e3b244cfe
            fecf537e729d5b07dc30df528dd22b76
            8d1b98736696a6fd348509fa13ceac34
            cfa2436f14a3f3cf65925bf1f4a13c5d
            15b21e1884f5ff6247aeabb786b93bce
            61bc17d768fd9732459018148f6cbe72
            2fd04796562dfdb4
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 2: AES-128-GCM.
        ESPVector(
            name: "gcm-test-01 case 2", algorithm: .aesGCM, salt: 0xcafebabe, spi: 0x0000a5f8,
            seq: 0xa, esn: false, iv: 0xfacedbaddecaf888, nextHeader: 1,
            key: "feffe9928665731c6d6a8f9467308308",
            payload: """
            4500003e698f000080114dccc0a80102
            c0a801010a980035002a2343b2d00100
            00010000000000000373697009637962
            65726369747902646b0000010001
            """,
            packet: """
            0000a5f80000000afacedbaddecaf888
            deb22cd9b07c72c16e3a65beeb8df304
            a5a5897d33ae530f1ba76d5d114d2a5c
            3de81827c10e9a4f51330d0eec416642
            cfbb85a5b47e48a4ec3b9ba95d918bd1
            83b70d3aa8bc6ee4c309e9d85a41ad4a
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 3: AES-256-GCM.
        ESPVector(
            name: "gcm-test-01 case 3", algorithm: .aesGCM, salt: 0x11223344, spi: 0x4a2cbfe3,
            seq: 0x2, esn: false, iv: 0x0102030405060708, nextHeader: 1,
            key: """
            abbccddef00112233445566778899aab
            abbccddef00112233445566778899aab
            """,
            payload: """
            4500003069a6400080062690c0a80102
            9389155e0a9e008b2dc57ee000000000
            7002400020bf0000020405b401010402
            """,
            packet: """
            4a2cbfe3000000020102030405060708
            ff425c9b724599df7a3bcd510194e00d
            6a78107f1b0b1cbf06efae9d65a5d763
            748a637985771d347f0545659f14e99d
            ef842d8eb335f4eecfdbf831824b4c49
            15956c96
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 5: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 5", algorithm: .aesGCM, salt: 0x57690e43, spi: 0x42f67e3f,
            seq: 0x1010101010101010, esn: true, iv: 0x4e280000a2fca1a3, nextHeader: 1,
            key: "3de09874b388e6491988d0c3607eae1f",
            payload: """
            4500003c99c300008001cb7c40679318
            010101010800085c0200430061626364
            65666768696a6b6c6d6e6f7071727374
            757677616263646566676869
            """,
            packet: """
            42f67e3f101010104e280000a2fca1a3
            fba2caa4853cf9f0f22cb10d86dd83b0
            fec75691cf1a04b00d1138ec9c357917
            65acbd8701ad79845bf9fe3fba487bc9
            1755e6662b4c8d0d1f5e22739530320a
            e0d731cc978ecafaeae88f00e80d6e48
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 6: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 6", algorithm: .aesGCM, salt: 0x57690e43, spi: 0x42f67e3f,
            seq: 0x1010101010101010, esn: true, iv: 0x4e280000a2fca1a3, nextHeader: 1,
            key: "3de09874b388e6491988d0c3607eae1f",
            payload: """
            4500001c42a200008001441f406793b6
            e00000020a00f5ff
            """,
            packet: """
            42f67e3f101010104e280000a2fca1a3
            fba2ca845e5df9f0f22c3e6e86dd831e
            1fc65792cd1af9130e1379ed369f071f
            35e034be95f112e4e7d05d35
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 8: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 8", algorithm: .aesGCM, salt: 0xdecaf888, spi: 0x00000100,
            seq: 0x1, esn: true, iv: 0xcafedebaceface74, nextHeader: 1,
            key: "abbccddef00112233445566778899aab",
            payload: """
            4500004933ba00007f119106c3fb1d10
            c2b1d326c02831ce0035dd7b800302d5
            00004e20001e8c18d75b81dc91baa047
            6b91b924b280389d92c963bac046ec95
            9b6266c04722b14923
            """,
            packet: """
            0000010000000001cafedebaceface74
            18a6fd42f72cbf4ab2a2ea901f73d814
            e3e7f243d95412e1c349c1d2fbec168f
            9190feebaf2cb01984e65863965d7472
            b79da345e0e780191f0d2f0e0f496c22
            6f2127b27db35724e7845d68651f57e6
            5f354f75ff17015769623436
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 9: AES-256-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 9", algorithm: .aesGCM, salt: 0x73616c74, spi: 0x17405e67,
            seq: 0x156f3126dd0db99b, esn: true, iv: 0x616e640169766563, nextHeader: 1,
            key: """
            abbccddef00112233445566778899aab
            abbccddef00112233445566778899aab
            """,
            payload: """
            45080028732c00004006e9f90a010612
            0a01038f06b88023dd6bafbecb712602
            50101f646d54
            """,
            packet: """
            17405e67dd0db99b616e640169766563
            f2d69ecdbd5a0d5b8d5ef38bad4da58d
            1f278fde98ef67549d524a3018d9a57f
            f4d3a31ce673119e451626c2415771e3
            b7eebca614c89b35
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 10: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 10", algorithm: .aesGCM, salt: 0x57690e43, spi: 0x42f67e3f,
            seq: 0x1010101010101010, esn: true, iv: 0x4e280000a2fca1a3, nextHeader: 1,
            key: "3de09874b388e6491988d0c3607eae1f",
            payload: """
            45000049333e00007f119182c3fb1d10
            c2b1d326c02831ce0035cb458003025b
            000001e0001e8c18d65759d52284a035
            2c71475c8880391c764d6e5ee0496b32
            5ae270c03899493915
            """,
            packet: """
            42f67e3f101010104e280000a2fca1a3
            fba2cad12fc1f9f00d3cebf305410db8
            3d7784b607323d220f24b0a97d541828
            00cadb0f68d99ef0e0c0c89ae9bea888
            4e52d65bc1afd0740f742444747b5b39
            ab533163aad4550ee5160975cdb608c5
            769189609763b8e18caa81e2
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 11: AES-256-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 11", algorithm: .aesGCM, salt: 0x73616c74, spi: 0x17405e67,
            seq: 0x156f3126dd0db99b, esn: true, iv: 0x616e640169766563, nextHeader: 1,
            key: """
            abbccddef00112233445566778899aab
            abbccddef00112233445566778899aab
            """,
            payload: """
            636973636f0172756c65730174686501
            6e6574776501646566696e6501746865
            746563686e6f6c6f6769657301746861
            7477696c6c01646566696e65746f6d6f
            72726f77
            """,
            packet: """
            17405e67dd0db99b616e640169766563
            d4b7ed86a1777f2ea13d6973d324c69e
            7b43f826fb56831226508bebd2dceb18
            d0a6df10e5487df074113e14c641024e
            3e6773d91a62ee429b043a10e3efe6b0
            12a49363412364f8c0cac587f249e56b
            11e24f30e44ccc76
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 12: AES-128-GCM.
        ESPVector(
            name: "gcm-test-01 case 12", algorithm: .aesGCM, salt: 0xd9664267, spi: 0x335467ae,
            seq: 0xffffffff, esn: false, iv: 0x43457e9182443bc6, nextHeader: 1,
            key: "7d773d00c144c525ac619d18c84a3f47",
            payload: "",
            packet: """
            335467aeffffffff43457e9182443bc6
            437f866bcb3f699fe9b0822bac961c45
            04bef270
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 13: AES-128-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 13", algorithm: .aesGCM, salt: 0xdecaf888, spi: 0x00000100,
            seq: 0x1, esn: true, iv: 0xcafedebaceface74, nextHeader: 1,
            key: "abbccddef00112233445566778899aab",
            payload: """
            746f016265016f72016e6f7401746f01
            6265
            """,
            packet: """
            0000010000000001cafedebaceface74
            29c9fc69a197d038ccdd14e2ddfcaa05
            43332164412503524303ed3c6c5f2838
            43af8c3e
            """),
        // draft-mcgrew-gcm-test-01 §4, test case 14: AES-256-GCM, ESN.
        ESPVector(
            name: "gcm-test-01 case 14", algorithm: .aesGCM, salt: 0x7475726e, spi: 0x796b6963,
            seq: 0xffffffffffffffff, esn: true, iv: 0x333021696765746d, nextHeader: 1,
            key: """
            6c6567616c697a656d6172696a75616e
            61616e64646f69746265666f72656961
            """,
            payload: """
            45000030da3a00008001df3bc0a80005
            c0a800010800c6cd0200070061626364
            65666768696a6b6c6d6e6f7071727374
            """,
            packet: """
            796b6963ffffffff333021696765746d
            f97ab2aa356d8edce17644ac8c78e25d
            d24dedbb29ebf1b64a274b39b49c3a86
            4cd3d78ca4ae68a32b42458fb57dbe82
            1dcc63b9d0937ba2945f669368661a32
            9fb4c053
            """),
        // RFC 7634 Appendix A: ESP example, ChaCha20-Poly1305, tunnel mode (next header 4).
        ESPVector(
            name: "RFC 7634 App. A", algorithm: .chacha20Poly1305, salt: 0xa0a1a2a3, spi: 0x01020304,
            seq: 0x5, esn: false, iv: 0x1011121314151617, nextHeader: 4,
            key: """
            808182838485868788898a8b8c8d8e8f
            909192939495969798999a9b9c9d9e9f
            """,
            payload: """
            45000054a6f200004001e778c6336405
            c000020508005b7a3a080000553bec10
            0007362708090a0b0c0d0e0f10111213
            1415161718191a1b1c1d1e1f20212223
            2425262728292a2b2c2d2e2f30313233
            34353637
            """,
            packet: """
            01020304000000051011121314151617
            24039428b97f417e3c13753a4f05087b
            67c352e6a7fab1b982d466ef407ae5c6
            14ee8099d52844eb61aa95dfab4c02f7
            2aa71e7c4c4f64c9befe2facc638e8f3
            cbec163fac469b502773f6fb94e664da
            9165b82829f641e076aaa8266b7fb0f7
            b11b369907e1ad43
            """),
    ]

    // MARK: checks (one SA table each, so every vector starts from a clean state)

    /// Seal with the vector's IV and sequence number; the wire bytes must match exactly.
    static func sealMatches(_ v: ESPVector) -> Bool {
        withVector(v) { key, payload, packet, out -> Bool in
            var table = SATable<1>()
            guard let slot = try? table.install(v.parameters(.outbound, keyLength: key.count), key: key) else {
                return false
            }
            table.primeSequence(slot: slot, next: v.seq)
            guard let n = try? table.seal(slot: slot, payload: payload, nextHeader: v.nextHeader, into: out, iv: v.iv)
            else { return false }
            return n == packet.count && same(UnsafeRawBufferPointer(rebasing: out[0..<n]), packet)
        }
    }

    /// Open the published packet with the receiver's window at the vector's sequence number.
    static func openMatches(_ v: ESPVector) -> Bool {
        withVector(v) { key, payload, packet, out -> Bool in
            var table = SATable<1>()
            guard let slot = try? table.install(v.parameters(.inbound, keyLength: key.count), key: key) else {
                return false
            }
            table.primeSequence(slot: slot, next: v.seq)
            guard let r = try? table.open(packet, into: out) else { return false }
            return r.nextHeader == v.nextHeader && r.length == payload.count
                && same(UnsafeRawBufferPointer(rebasing: out[0..<r.length]), payload)
                && table.snapshot(slot: slot)?.counters.packets == 1
        }
    }

    /// The same packet with one ICV bit flipped must fail authentication and leave the SA as it was.
    static func rejectsTamperedICV(_ v: ESPVector) -> Bool {
        withVector(v) { key, _, packet, out -> Bool in
            var table = SATable<1>()
            guard let slot = try? table.install(v.parameters(.inbound, keyLength: key.count), key: key),
                  packet.count > 0, packet.count <= out.count
            else { return false }
            table.primeSequence(slot: slot, next: v.seq)
            guard let before = table.snapshot(slot: slot) else { return false }
            let wire = UnsafeMutableRawBufferPointer(rebasing: out[(out.count - packet.count)...])
            wire.copyMemory(from: packet)
            wire[packet.count - 1] ^= 0x01
            let dst = UnsafeMutableRawBufferPointer(rebasing: out[0..<(out.count - packet.count)])
            do throws(ESPError) {
                _ = try table.open(UnsafeRawBufferPointer(wire), into: dst)
                return false
            } catch {
                guard error == .authenticationFailed, let after = table.snapshot(slot: slot) else { return false }
                return after.sameProtocolState(as: before) && after.counters.icvFailures == 1
            }
        }
    }

    /// RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
    static func hmacMatches() -> Bool {
        var key: (UInt8, UInt8, UInt8, UInt8) = (0x4a, 0x65, 0x66, 0x65)
        let msg: StaticString = "what do ya want for nothing?"
        let expected: StaticString = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        var scratch = InlineArray<64, UInt8>(repeating: 0)
        return withUnsafeMutableBytes(of: &scratch) { raw -> Bool in
            let mac = UnsafeMutableRawBufferPointer(rebasing: raw[0..<32])
            let want = UnsafeMutableRawBufferPointer(rebasing: raw[32..<64])
            guard decodeHex(expected, into: want) == 32 else { return false }
            let rc = withUnsafeBytes(of: &key) { k in
                hs_hmac_sha256(k.baseAddress!.assumingMemoryBound(to: UInt8.self), 4,
                               msg.utf8Start, msg.utf8CodeUnitCount,
                               mac.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            return rc == HS_OK && same(UnsafeRawBufferPointer(mac), UnsafeRawBufferPointer(want))
        }
    }

    /// RFC 5869 Appendix A.1: IKM = 22 x 0x0b, salt = 00..0c, info = f0..f9, L = 42.
    static func hkdfMatches() -> Bool {
        let expected: StaticString = """
            3cb25f25faacd57a90434f64d0362f2a
            2d2d0a90cf1a5a4c5db02d56ecc4c5bf
            34007208d5b887185865
            """
        var scratch = InlineArray<144, UInt8>(repeating: 0)
        return withUnsafeMutableBytes(of: &scratch) { raw -> Bool in
            for i in 0..<22 { raw[i] = 0x0b }                 // ikm   [0, 22)
            for i in 0..<13 { raw[22 + i] = UInt8(i) }        // salt  [22, 35)
            for i in 0..<10 { raw[35 + i] = UInt8(0xf0 + i) } // info  [35, 45)
            let okm = UnsafeMutableRawBufferPointer(rebasing: raw[48..<90])
            let want = UnsafeMutableRawBufferPointer(rebasing: raw[96..<138])
            guard decodeHex(expected, into: want) == 42 else { return false }
            let b = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let rc = hs_hkdf_sha256(b + 22, 13, b, 22, b + 35, 10, b + 48, 42)
            return rc == HS_OK && same(UnsafeRawBufferPointer(okm), UnsafeRawBufferPointer(want))
        }
    }

    // MARK: plumbing

    /// Decodes the vector into one stack scratch (key, payload, packet, output) and wipes it afterwards.
    static func withVector(_ v: ESPVector, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer,
                                                  UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Bool) -> Bool {
        var scratch = InlineArray<1024, UInt8>(repeating: 0)
        return withUnsafeMutableBytes(of: &scratch) { raw -> Bool in
            defer { hs_zeroize(raw.baseAddress, raw.count) }
            guard let k = decodeHex(v.key, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<64])),
                  let p = decodeHex(v.payload, into: UnsafeMutableRawBufferPointer(rebasing: raw[64..<320])),
                  let w = decodeHex(v.packet, into: UnsafeMutableRawBufferPointer(rebasing: raw[320..<640]))
            else { return false }
            return body(UnsafeRawBufferPointer(rebasing: raw[0..<k]), UnsafeRawBufferPointer(rebasing: raw[64..<(64 + p)]),
                        UnsafeRawBufferPointer(rebasing: raw[320..<(320 + w)]),
                        UnsafeMutableRawBufferPointer(rebasing: raw[640..<1024]))
        }
    }

    /// Hex digits with optional whitespace; nil on any other character, an odd digit count or overflow.
    static func decodeHex(_ s: StaticString, into out: UnsafeMutableRawBufferPointer) -> Int? {
        var n = 0, half = 0, ok = true
        var high: UInt8 = 0
        s.withUTF8Buffer { b in
            for c in b {
                if c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { continue }
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x61...0x66: d = c - 0x61 + 10
                case 0x41...0x46: d = c - 0x41 + 10
                default: ok = false; return
                }
                if half == 0 { high = d; half = 1; continue }
                guard n < out.count else { ok = false; return }
                out[n] = high << 4 | d
                n += 1
                half = 0
            }
        }
        return ok && half == 0 ? n : nil
    }

    static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where a[i] != b[i] { return false }
        return true
    }
}

extension ESPVector {
    func parameters(_ direction: SADirection, keyLength: Int) -> SAParameters {
        SAParameters(spi: spi, direction: direction, algorithm: algorithm, keyLength: keyLength, icvLength: 16,
                     salt: salt, local: .anyV4, selector: SelectorPattern(remote: .anyV4, prefix: 0),
                     peer: .anyV4, esn: esn)
    }
}

extension SelfTest.Report {
    mutating func record(_ name: StaticString, _ aspect: StaticString, _ ok: Bool) {
        if ok {
            passed += 1
        } else {
            failed += 1
            print(aspect.utf8CodeUnitCount == 0 ? "FAIL: \(name)" : "FAIL: \(name): \(aspect)")
        }
    }
}
