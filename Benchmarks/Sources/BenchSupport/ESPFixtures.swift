import CHandsetShim
import HandsetCore

/// One AEAD configuration under test.
public struct BenchAlgorithm: Sendable {
    public let name: String
    public let algorithm: ESPAlgorithm
    public let keyLength: Int

    public static let all = [
        BenchAlgorithm(name: "AES-128-GCM", algorithm: .aesGCM, keyLength: 16),
        BenchAlgorithm(name: "AES-256-GCM", algorithm: .aesGCM, keyLength: 32),
        BenchAlgorithm(name: "ChaCha20-Poly1305", algorithm: .chacha20Poly1305, keyLength: 32),
    ]
    public static let payloadSizes = [64, 512, 1400]

    var shimID: Int32 { algorithm == .aesGCM ? Int32(HS_AEAD_AES_GCM) : Int32(HS_AEAD_CHACHA20_POLY1305) }
}

/// Packets kept for the open benchmarks: the replay window rejects a repeat, so each pass walks a ring of
/// distinct packets and the window is reset once per pass (amortised over `ringSize` opens).
public let ringSize = 32
let slotBytes = 2048
let spi: UInt32 = 0x0000_4A11
let salt: UInt32 = 0x0102_0304
let espHeader = 16  // SPI, sequence, 8-byte explicit IV
let icv = 16

/// Plaintext bytes the AEAD actually processes for an ESP payload: payload, 1-2-3 padding to 4 bytes,
/// pad length, next header (RFC 4303 §2.4). The raw benchmarks encrypt exactly this many bytes.
public func espPlainLength(_ payload: Int) -> Int { payload + (4 - (payload + 2) % 4) % 4 + 2 }

func allocateBuffer(_ n: Int) -> UnsafeMutableRawBufferPointer {
    let b = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
    b.initializeMemory(as: UInt8.self, repeating: 0)
    return b
}

/// A raw mbedTLS AEAD context (through the shim) plus an SATable holding the same key as an outbound and an
/// inbound SA with the same SPI, so the table can open what it seals. All buffers are allocated here once.
public final class ESPFixture: @unchecked Sendable {
    public let alg: BenchAlgorithm
    public let payloadLength: Int
    public let plainLength: Int
    let rawContext: UnsafeMutableRawPointer
    /// salt || IV, then SPI || seq: the same nonce and AAD layout ESP uses.
    let nonceAndAAD = allocateBuffer(32)
    public let payload: UnsafeMutableRawBufferPointer
    public let wire = allocateBuffer(slotBytes)
    public let plain = allocateBuffer(slotBytes)
    /// `ringSize` sealed packets, one per `slotBytes` slot, and their lengths.
    let ring = allocateBuffer(ringSize * slotBytes)
    var ringLength = 0
    var next = 0
    var nextRaw = 0
    /// Behind a pointer, not a class `var`: a class property pays a dynamic exclusivity check per access, which the
    /// firmware (a local `var plane`) does not, and which the raw path here (only `let`s) does not either.
    let tablePointer: UnsafeMutablePointer<SATable<4>>
    var table: SATable<4> {
        _read { yield tablePointer.pointee }
        _modify { yield &tablePointer.pointee }
    }
    let outSlot: Int
    let inSlot: Int

    public init(_ alg: BenchAlgorithm, payload n: Int) {
        self.alg = alg
        payloadLength = n
        plainLength = espPlainLength(n)
        payload = allocateBuffer(n)
        for k in 0..<n { payload[k] = UInt8(truncatingIfNeeded: k &* 7) }

        let key = (0..<alg.keyLength).map { UInt8($0 &+ 0x40) }
        let ctx = UnsafeMutableRawPointer.allocate(byteCount: hs_aead_ctx_size(), alignment: max(16, hs_aead_ctx_align()))
        ctx.initializeMemory(as: UInt8.self, repeating: 0, count: hs_aead_ctx_size())
        let rc = key.withUnsafeBufferPointer { hs_aead_setkey(ctx, alg.shimID, $0.baseAddress, $0.count) }
        precondition(rc == HS_OK)
        rawContext = ctx

        let local = IPAddress(10, 0, 0, 2), remote = IPAddress(192, 0, 2, 1)
        var t = SATable<4>()
        var slots = [Int]()
        for dir in [SADirection.outbound, .inbound] {
            let p = SAParameters(spi: spi, direction: dir, algorithm: alg.algorithm, keyLength: alg.keyLength,
                                 salt: salt, local: local, selector: SelectorPattern(remote: remote, prefix: 32),
                                 peer: remote)
            slots.append(key.withUnsafeBytes { try! t.install(p, key: $0) })
        }
        tablePointer = UnsafeMutablePointer<SATable<4>>.allocate(capacity: 1)
        tablePointer.initialize(to: t)
        outSlot = slots[0]
        inSlot = slots[1]

        nonceAndAAD.storeBytes(of: salt.bigEndian, toByteOffset: 0, as: UInt32.self)
        nonceAndAAD.storeBytes(of: UInt64(1).bigEndian, toByteOffset: 4, as: UInt64.self)
        nonceAndAAD.storeBytes(of: spi.bigEndian, toByteOffset: 12, as: UInt32.self)
        nonceAndAAD.storeBytes(of: UInt32(1).bigEndian, toByteOffset: 16, as: UInt32.self)

        for r in 0..<ringSize {
            let slot = UnsafeMutableRawBufferPointer(rebasing: ring[(r * slotBytes)..<((r + 1) * slotBytes)])
            ringLength = try! table.seal(slot: outSlot, payload: UnsafeRawBufferPointer(payload), nextHeader: 17, into: slot)
        }
        precondition(ringLength == espHeader + plainLength + icv)
        // Self-checks: both paths open what was sealed.
        precondition(openRaw() == HS_OK && openRaw() == HS_OK)
        for _ in 0..<(2 * ringSize) { precondition(openESP() == n) }
    }

    deinit {
        hs_aead_wipe(rawContext)
        rawContext.deallocate()
        tablePointer.deinitialize(count: 1)
        tablePointer.deallocate()
    }

    @inline(__always) func ringPacket(_ r: Int) -> UnsafeMutableRawPointer { ring.baseAddress! + r * slotBytes }

    /// The AEAD call alone: encrypts the payload and ESP trailer from `payload` into `wire`, tag after it.
    @inline(__always) public func sealRaw() -> Int32 {
        let n = nonceAndAAD.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let w = wire.baseAddress!.assumingMemoryBound(to: UInt8.self) + espHeader
        // Same bytes ESP encrypts: the payload (copied, as SATable.seal copies it) and the trailer.
        // copyMemory, as SATable.seal: a typed `update(from:)` stays a byte loop under the firmware's -Osize on ARM.
        UnsafeMutableRawPointer(w).copyMemory(from: payload.baseAddress!, byteCount: payloadLength)
        return hs_aead_seal(rawContext, n, n + 12, 8, w, w, plainLength, w + plainLength, icv)
    }

    /// SATable.seal on the same buffers: header, copy, padding, trailer, AEAD, sequence and counters.
    @inline(__always) public func sealESP() -> Int {
        try! table.seal(slot: outSlot, payload: UnsafeRawBufferPointer(payload), nextHeader: 17, into: wire)
    }

    /// The AEAD call alone on the next ring packet, nonce and AAD taken from its header as ESP does.
    @inline(__always) public func openRaw() -> Int32 {
        let pkt = ringPacket(nextRaw).assumingMemoryBound(to: UInt8.self)
        nextRaw = nextRaw == ringSize - 1 ? 0 : nextRaw + 1
        let n = nonceAndAAD.baseAddress!.assumingMemoryBound(to: UInt8.self)
        (n + 4).update(from: pkt + 8, count: 8)
        (n + 12).update(from: pkt, count: 8)
        return hs_aead_open(rawContext, n, n + 12, 8, pkt + espHeader, plain.baseAddress!.assumingMemoryBound(to: UInt8.self),
                            plainLength, pkt + espHeader + plainLength, icv)
    }

    /// SATable.open of the next ring packet: SPI lookup, replay check, AEAD, padding check, window, counters.
    @inline(__always) public func openESP() -> Int {
        if next == 0 { table.primeSequence(slot: inSlot, next: 0) }  // once per ring pass
        let pkt = UnsafeRawBufferPointer(start: ringPacket(next), count: ringLength)
        next = next == ringSize - 1 ? 0 : next + 1
        return try! table.open(pkt, into: plain).length
    }
}
