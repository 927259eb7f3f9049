import CHandsetShim

/// Where the DRBG's seed comes from. `.none` always fails: it lets tests see a seeding failure.
public enum EntropySource: Sendable {
    case getrandom
    case none
}

/// CTR-DRBG (AES-256) seeded from getrandom; one context allocated at init. Unseeded (the kernel gave no
/// entropy) it produces nothing: every `fill` fails, and the firmware refuses to start.
public struct HandsetRandom: ~Copyable {
    private let ctx: UnsafeMutableRawPointer
    public let seeded: Bool

    public init(personalization: StaticString = "handset", entropy: EntropySource = .getrandom) {
        ctx = UnsafeMutableRawPointer.allocate(byteCount: hs_drbg_ctx_size(), alignment: max(16, hs_drbg_ctx_align()))
        let source = entropy == .none ? Int32(HS_ENTROPY_NONE) : Int32(HS_ENTROPY_GETRANDOM)
        seeded = hs_drbg_seed(ctx, personalization.utf8Start, personalization.utf8CodeUnitCount, source) == HS_OK
    }

    deinit {
        hs_drbg_wipe(ctx)
        ctx.deallocate()
    }

    public func fill(_ out: UnsafeMutableRawBufferPointer) -> Bool {
        guard seeded else { return false }  // an unseeded CTR-DRBG would run from an all-zero key
        return out.count == 0 || hs_drbg_fill(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count) == HS_OK
    }

    public func next64() -> UInt64 {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { fill($0) }
        return v
    }
}
