import CHandsetShim

/// The per-epoch AEAD keys (AES-256-GCM) derived from a device key:
///   K_dir = HKDF-SHA-256(salt = "handset-kd v1", IKM = device key, info = "up"|"down" || device id(8) || epoch(2))
/// Context storage is allocated once; `derive` rekeys in place and the old schedule is wiped.
public struct DeliveryKeys: ~Copyable {
    private let pool: UnsafeMutableRawPointer
    private let stride: Int
    public private(set) var epoch: UInt16 = 0
    public private(set) var isSet = false

    public init() {
        let align = max(16, hs_aead_ctx_align())
        stride = (hs_aead_ctx_size() + align - 1) / align * align
        pool = UnsafeMutableRawPointer.allocate(byteCount: 2 * stride, alignment: align)
        pool.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * stride)
    }

    deinit {
        hs_aead_wipe(pool)
        hs_aead_wipe(pool + stride)
        pool.deallocate()
    }

    func context(_ d: KDDirection) -> UnsafeMutableRawPointer { pool + Int(d.rawValue) * stride }

    public mutating func derive(deviceKey: UnsafeRawBufferPointer, deviceID: UInt64, epoch: UInt16) -> Bool {
        wipe()
        guard derive(deviceKey, deviceID, epoch, .up), derive(deviceKey, deviceID, epoch, .down) else {
            wipe()
            return false
        }
        self.epoch = epoch
        isSet = true
        return true
    }

    private func derive(_ ikm: UnsafeRawBufferPointer, _ id: UInt64, _ epoch: UInt16, _ d: KDDirection) -> Bool {
        var k = KeyBytes()
        defer { k.wipe() }
        let derived = k.withMutableBytes { out in Self.hkdf(ikm, deviceID: id, epoch: epoch, direction: d, into: out) }
        return derived && k.withBytes { (key: UnsafeRawBufferPointer) in
            hs_aead_setkey(context(d), Int32(HS_AEAD_AES_GCM), key.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) == HS_OK
        }
    }

    public mutating func wipe() {
        hs_aead_wipe(context(.up))
        hs_aead_wipe(context(.down))
        isSet = false
    }

    static func hkdf(_ ikm: UnsafeRawBufferPointer, deviceID: UInt64, epoch: UInt16, direction: KDDirection,
                     into out: UnsafeMutableRawBufferPointer) -> Bool {
        var info: (UInt64, UInt64) = (0, 0)
        let salt: StaticString = "handset-kd v1"
        return withUnsafeMutableBytes(of: &info) { i in
            var w = WireWriter(i)
            if direction == .up { w.u8(0x75); w.u8(0x70) } else { w.u8(0x64); w.u8(0x6F); w.u8(0x77); w.u8(0x6E) }
            w.u64(deviceID); w.u16(epoch)
            return hs_hkdf_sha256(salt.utf8Start, salt.utf8CodeUnitCount,
                                  ikm.baseAddress?.assumingMemoryBound(to: UInt8.self), ikm.count,
                                  i.baseAddress!.assumingMemoryBound(to: UInt8.self), w.count,
                                  out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count) == HS_OK
        }
    }
}

/// 32 bytes of key material on the stack, wiped by its owner.
public struct KeyBytes: Equatable, Sendable {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public init() {}
    public init(_ b: UnsafeRawBufferPointer) {
        withUnsafeMutableBytes(of: &words) { w in
            let n = min(32, b.count)
            if n > 0 { w.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: n) }
        }
    }
    public mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        withUnsafeMutableBytes(of: &words, body)
    }
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: words, body)
    }
    public mutating func wipe() { withUnsafeMutableBytes(of: &words) { hs_zeroize($0.baseAddress, 32) } }
    public var isZero: Bool { words.0 | words.1 | words.2 | words.3 == 0 }
    /// Bytes 16-31 all zero: what a 16-byte key in a 32-byte field must leave.
    public var upperHalfIsZero: Bool { words.2 | words.3 == 0 }
    public static func == (a: KeyBytes, b: KeyBytes) -> Bool {
        a.withBytes { x in b.withBytes { y in
            hs_ct_equal(x.baseAddress!.assumingMemoryBound(to: UInt8.self), y.baseAddress!.assumingMemoryBound(to: UInt8.self), 32) == 1
        } }
    }
}

extension DeliveryKeys {
    /// Seals `body` as one message: header (the AAD) || ciphertext || tag. Nonce = 0^7 || counter(5).
    public func seal(_ h: KDHeader, direction: KDDirection, body: UnsafeRawBufferPointer,
                     into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard isSet, h.epoch == epoch else { return nil }
        var w = WireWriter(out)
        h.write(&w, direction: direction)
        let hdr = w.count
        guard w.ok, out.count >= hdr + body.count + KD.tagLength else { return nil }
        if body.count > 0 { (out.baseAddress! + hdr).copyMemory(from: body.baseAddress!, byteCount: body.count) }
        var nonce: (UInt64, UInt32) = (0, 0)
        let rc = withUnsafeMutableBytes(of: &nonce) { n -> Int32 in
            Self.fillNonce(n, counter: h.counter)
            let base = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return hs_aead_seal(context(direction), n.baseAddress!.assumingMemoryBound(to: UInt8.self), base, hdr,
                                base + hdr, base + hdr, body.count, base + hdr + body.count, KD.tagLength)
        }
        return rc == HS_OK ? hdr + body.count + KD.tagLength : nil
    }

    /// Authenticates `wire` and decrypts its body into `out[0..<n]`; returns n. Nothing is decided on the
    /// header until this succeeds.
    public func open(_ wire: UnsafeRawBufferPointer, header h: KDHeader, direction: KDDirection,
                     into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard isSet, h.epoch == epoch else { return nil }
        let hdr = direction.headerLength
        let n = wire.count - hdr - KD.tagLength
        guard n >= 0, out.count >= n else { return nil }
        var nonce: (UInt64, UInt32) = (0, 0)
        let rc = withUnsafeMutableBytes(of: &nonce) { nb -> Int32 in
            Self.fillNonce(nb, counter: h.counter)
            let src = wire.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let dst = out.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return hs_aead_open(context(direction), nb.baseAddress!.assumingMemoryBound(to: UInt8.self), src, hdr,
                                src + hdr, dst, n, src + hdr + n, KD.tagLength)
        }
        return rc == HS_OK ? n : nil
    }

    static func fillNonce(_ n: UnsafeMutableRawBufferPointer, counter: UInt64) {
        var w = WireWriter(n)
        w.u32(0); w.u16(0); w.u8(0); w.u40(counter)
    }
}
