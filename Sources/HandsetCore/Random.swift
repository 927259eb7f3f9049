import CHandsetShim

/// CTR-DRBG (AES-256) seeded from getrandom; one context allocated at init.
public struct HandsetRandom: ~Copyable {
    private let ctx: UnsafeMutableRawPointer
    public let seeded: Bool

    public init(personalization: StaticString = "handset") {
        ctx = UnsafeMutableRawPointer.allocate(byteCount: hs_drbg_ctx_size(), alignment: max(16, hs_drbg_ctx_align()))
        seeded = hs_drbg_seed(ctx, personalization.utf8Start, personalization.utf8CodeUnitCount) == HS_OK
    }

    deinit {
        hs_drbg_wipe(ctx)
        ctx.deallocate()
    }

    public func fill(_ out: UnsafeMutableRawBufferPointer) -> Bool {
        out.count == 0 || hs_drbg_fill(ctx, out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count) == HS_OK
    }

    public func next64() -> UInt64 {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { fill($0) }
        return v
    }
}
