import CHandsetShim
import Glibc
import MallocInterposerSwift
import Testing
@testable import HandsetCore

/// Counts heap allocations made by the calling thread between `start` and `stop`.
///
/// How it interposes: the test binary links libMallocInterposerSwift.so, which defines malloc, calloc,
/// realloc, free and friends itself. On Linux a shared object's symbols win over libc's when it comes
/// earlier in the global lookup order, so every malloc (Swift runtime, libmbedcrypto, libc) goes through it.
/// The positive controls below prove that on the machine the test runs on; if they fail, nothing else here
/// means anything.
///
/// Swift Testing runs suites in parallel, so process-wide counters would see other tests' mallocs. The
/// interposer's allocation hook runs on the allocating thread; it counts only the thread that called
/// `start` (the measured bodies are synchronous, so they never leave that thread).
///
/// The hook is one process-wide slot, and BearerDriverTests' ATEngineAllocationTests use it too, in parallel.
/// So `stop` ends with a canary allocation that must reach our hook: if another suite replaced the hook or
/// turned counting off at any point during the loop, the canary is lost, `stop` returns nil and the caller
/// measures again. A zero can therefore never come from a counter that was not listening.
enum MallocCounter {
    nonisolated(unsafe) static var owner: pthread_t = 0
    nonisolated(unsafe) static var mine = 0

    static let hook: MallocInterposerSwift.AllocationHook = { _ in
        if pthread_equal(pthread_self(), MallocCounter.owner) != 0 { MallocCounter.mine += 1 }
    }

    static func start() {
        mine = 0
        owner = pthread_self()
        MallocInterposerSwift.setAllocationHook(hook)
        MallocInterposerSwift.hook()
    }

    /// Allocations made by this thread since `start`, or nil when the counter was not listening throughout.
    static func stop() -> Int? {
        let n = mine
        let canary = UnsafeMutableRawPointer.allocate(byteCount: 80, alignment: 8)
        canary.storeBytes(of: 1, as: UInt8.self)
        canary.deallocate()
        let listened = mine > n
        MallocInterposerSwift.unhook()
        MallocInterposerSwift.setAllocationHook(nil)
        owner = 0
        return listened ? n : nil
    }

    static let attempts = 5
}

/// Algorithm, key length and ICV length of one SA under test.
struct AllocCase: CustomTestStringConvertible, Sendable {
    let name: String
    let algorithm: ESPAlgorithm
    let keyLength: Int
    let icvLength: Int
    var testDescription: String { name }

    static let all = [
        AllocCase(name: "AES-128-GCM", algorithm: .aesGCM, keyLength: 16, icvLength: 16),
        AllocCase(name: "AES-256-GCM", algorithm: .aesGCM, keyLength: 32, icvLength: 16),
        AllocCase(name: "ChaCha20-Poly1305", algorithm: .chacha20Poly1305, keyLength: 32, icvLength: 16),
    ]
}

/// One table holding both ends of a flow: outbound and inbound SA share SPI, key and salt,
/// so what the table seals it can open again.
func loopbackTable(_ c: AllocCase) -> SATable<4> {
    var t = SATable<4>()
    let key = [UInt8](repeating: 0x5A, count: c.keyLength)
    let local = IPAddress(10, 0, 0, 2), remote = IPAddress(192, 0, 2, 1)
    for dir in [SADirection.outbound, .inbound] {
        let p = SAParameters(spi: 0x0000_4A11, direction: dir, algorithm: c.algorithm, keyLength: c.keyLength,
                             icvLength: c.icvLength, salt: 0x0102_0304, local: local,
                             selector: SelectorPattern(remote: remote, prefix: 32), peer: remote)
        _ = key.withUnsafeBytes { try! t.install(p, key: $0) }
    }
    return t
}

/// A handset and its peer with mirrored SAs, built as the gateway would install them.
struct AllocPlanes: ~Copyable {
    var handset = DataPlane<4, 4>()
    var peer = DataPlane<4, 4>()
    let selector: TrafficSelector

    init(_ c: AllocCase) {
        let h = IPAddress(10, 0, 0, 2), g = IPAddress(192, 0, 2, 1)
        selector = TrafficSelector(local: h, remote: g, localPort: 5000, remotePort: 7)
        let key = [UInt8](repeating: 0x33, count: c.keyLength)
        func params(_ dir: SADirection, local: IPAddress, remote: IPAddress) -> SAParameters {
            SAParameters(spi: 0x0000_5B22, direction: dir, algorithm: c.algorithm, keyLength: c.keyLength,
                         icvLength: c.icvLength, salt: 0x0A0B_0C0D, local: local,
                         selector: SelectorPattern(remote: remote, prefix: 32, proto: IPProto.udp), peer: remote)
        }
        try! handset.spd.append(SPDRule(SelectorPattern(remote: g, prefix: 32), .protect(template: 1)))
        try! peer.spd.append(SPDRule(SelectorPattern(remote: h, prefix: 32), .protect(template: 1)))
        _ = key.withUnsafeBytes { try! handset.sas.install(params(.outbound, local: h, remote: g), key: $0) }
        _ = key.withUnsafeBytes { try! peer.sas.install(params(.inbound, local: g, remote: h), key: $0) }
    }
}

/// Under AddressSanitizer (the test command's ASan stage) malloc belongs to ASan, not the interposer; the plain
/// run, where the positive controls must pass, does the counting.
let addressSanitizerOwnsMalloc = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

@Suite(.serialized, .disabled(if: addressSanitizerOwnsMalloc, "malloc belongs to AddressSanitizer in this run"))
struct AllocationTests {
    static let roundTrips = 1_000
    static let warmUp = 16

    // Positive controls: without them a zero below could just mean the counter is not wired in.

    @Test func countsASwiftAllocation() {
        var n: Int? = nil
        for _ in 0..<MallocCounter.attempts where n == nil {
            MallocCounter.start()
            let before = MallocCounter.mine
            let p = UnsafeMutableRawPointer.allocate(byteCount: 96, alignment: 8)
            p.storeBytes(of: 1, as: UInt8.self)
            p.deallocate()
            let counted = MallocCounter.mine - before
            n = MallocCounter.stop().map { _ in counted }
        }
        #expect((n ?? 0) >= 1, "a Swift allocation inside hook()/unhook() was not counted: the interposer is not active")
    }

    @Test func countsAnAllocationInsideMbedTLS() {
        // mbedtls_md_hmac sets up its digest context with mbedtls_calloc: a malloc from another shared object.
        let key = [UInt8](repeating: 1, count: 16), msg = [UInt8](repeating: 2, count: 16)
        var mac = [UInt8](repeating: 0, count: 32)
        var n: Int? = nil, rc: Int32 = -1
        for _ in 0..<MallocCounter.attempts where n == nil {
            mac.withUnsafeMutableBufferPointer { m in
                MallocCounter.start()
                rc = hs_hmac_sha256(key, key.count, msg, msg.count, m.baseAddress!)
                n = MallocCounter.stop()
            }
        }
        #expect(rc == HS_OK)
        #expect((n ?? 0) >= 1, "an mbedTLS calloc was not counted: libmbedcrypto's malloc calls bypass the interposer")
    }

    // After start-up nothing allocates: not installing, replacing or deleting an SA (mbedtls_gcm_setkey would calloc
    // an AES context on each; the shim keys GCM in the table's own storage), and not the per-packet path below.

    @Test func installReplaceDeleteDoNotAllocate() throws {
        var t = SATable<4>()
        let key = [UInt8](repeating: 0x5A, count: 32)
        let any = IPAddress(v4: 0)
        func params(_ spi: UInt32, _ c: AllocCase) -> SAParameters {
            SAParameters(spi: spi, direction: .inbound, algorithm: c.algorithm, keyLength: c.keyLength, salt: 1,
                         local: any, selector: SelectorPattern(remote: any, prefix: 0), peer: any)
        }
        var mallocs: Int? = nil, failures = 0
        for _ in 0..<MallocCounter.attempts where mallocs == nil {
            t.reset()
            key.withUnsafeBytes { all in
                MallocCounter.start()
                // Every slot sees every algorithm in turn, so a context re-keyed across AES-128, AES-256 and ChaCha is covered.
                for round in 0..<6 {
                    for s in 0..<4 {
                        let c = AllocCase.all[(round + s) % 3]
                        let k = UnsafeRawBufferPointer(rebasing: all[0..<c.keyLength])
                        do {
                            let spi = UInt32(0x1000 + s)
                            if round == 0 { try t.install(params(spi, c), key: k) }
                            else if round % 2 == 1 { try t.replace(spi: spi, direction: .inbound, with: params(spi, c), key: k) }
                            else { try t.delete(spi: spi, direction: .inbound); try t.install(params(spi, c), key: k) }
                        } catch { failures += 1 }
                    }
                }
                mallocs = MallocCounter.stop()
            }
        }
        #expect(failures == 0 && t.count == 4)
        #expect(mallocs != nil, "another suite kept taking the malloc hook; nothing was measured")
        #expect(mallocs == 0, "\(mallocs ?? -1) mallocs over 24 SA installs, replaces and deletes")
    }

    // The claim: the warmed-up per-packet path never touches the heap.

    @Test(arguments: AllocCase.all)
    func satableSealOpenDoesNotAllocate(_ c: AllocCase) throws {
        var t = loopbackTable(c)
        let out = t.slot(spi: 0x4A11, direction: .outbound)!
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 1400, alignment: 16)
        let wire = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { payload.deallocate(); wire.deallocate(); plain.deallocate() }
        for k in 0..<payload.count { payload[k] = UInt8(truncatingIfNeeded: k) }
        let sizes = [64, 512, 1400]
        let before = t.snapshot(slot: out)!.counters.packets

        var opened = 0, wrong = 0, mallocs: Int? = nil, rounds = 0
        for _ in 0..<MallocCounter.attempts where mallocs == nil {
            MallocCounter.start()
            for r in 0..<(Self.warmUp + Self.roundTrips) {
                if r == Self.warmUp { MallocCounter.mine = 0 }
                let len = sizes[r % 3]
                let n = try t.seal(slot: out, payload: UnsafeRawBufferPointer(rebasing: payload[0..<len]),
                                   nextHeader: 17, into: wire)
                let got = try t.open(UnsafeRawBufferPointer(rebasing: wire[0..<n]), into: plain)
                if got.length == len && got.nextHeader == 17 { opened += 1 } else { wrong += 1 }
            }
            mallocs = MallocCounter.stop()
            rounds += Self.warmUp + Self.roundTrips
        }

        #expect(mallocs != nil, "another suite kept taking the malloc hook; nothing was measured")
        #expect(mallocs == 0, "\(c.name): \(mallocs ?? -1) mallocs over \(Self.roundTrips) seal+open round trips")
        #expect(opened == rounds && wrong == 0)
        #expect(t.snapshot(slot: out)!.counters.packets == before + UInt64(rounds))
        let last = sizes[(Self.warmUp + Self.roundTrips - 1) % 3]
        #expect(memcmp(plain.baseAddress!, payload.baseAddress!, last) == 0)
    }

    @Test(arguments: AllocCase.all)
    func dataPlaneSealOpenDoesNotAllocate(_ c: AllocCase) throws {
        var planes = AllocPlanes(c)
        let sel = planes.selector
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 1400, alignment: 16)
        let wire = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        let plain = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { payload.deallocate(); wire.deallocate(); plain.deallocate() }
        for k in 0..<payload.count { payload[k] = UInt8(truncatingIfNeeded: 3 &* k) }
        let sizes = [64, 512, 1400]

        var delivered = 0, other = 0, mallocs: Int? = nil, rounds = 0
        for _ in 0..<MallocCounter.attempts where mallocs == nil {
            MallocCounter.start()
            for r in 0..<(Self.warmUp + Self.roundTrips) {
                if r == Self.warmUp { MallocCounter.mine = 0 }
                let len = sizes[r % 3]
                let s = planes.handset.seal(UnsafeRawBufferPointer(rebasing: payload[0..<len]), selector: sel, into: wire)
                guard case .packet(let n, _, _) = s else { other += 1; continue }
                let o = try planes.peer.open(UnsafeRawBufferPointer(rebasing: wire[0..<n]), into: plain)
                if case .datagram(_, let range) = o, range.count == len { delivered += 1 } else { other += 1 }
            }
            mallocs = MallocCounter.stop()
            rounds += Self.warmUp + Self.roundTrips
        }

        #expect(mallocs != nil, "another suite kept taking the malloc hook; nothing was measured")
        #expect(mallocs == 0, "\(c.name): \(mallocs ?? -1) mallocs over \(Self.roundTrips) DataPlane round trips")
        #expect(delivered == rounds && other == 0)
        #expect(planes.peer.counters == DataPlaneCounters())
    }
}
