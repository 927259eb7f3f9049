// Big-endian field access on raw buffers. Callers check bounds once per packet; these only read and write.

extension UnsafeRawBufferPointer {
    @inline(__always) func be16(_ at: Int) -> UInt16 {
        UInt16(self[at]) << 8 | UInt16(self[at + 1])
    }
    @inline(__always) func be32(_ at: Int) -> UInt32 {
        UInt32(self[at]) << 24 | UInt32(self[at + 1]) << 16 | UInt32(self[at + 2]) << 8 | UInt32(self[at + 3])
    }
    @inline(__always) func be64(_ at: Int) -> UInt64 {
        UInt64(be32(at)) << 32 | UInt64(be32(at + 4))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) func put16(_ v: UInt16, at: Int) {
        self[at] = UInt8(truncatingIfNeeded: v >> 8)
        self[at + 1] = UInt8(truncatingIfNeeded: v)
    }
    @inline(__always) func put32(_ v: UInt32, at: Int) {
        self[at] = UInt8(truncatingIfNeeded: v >> 24)
        self[at + 1] = UInt8(truncatingIfNeeded: v >> 16)
        self[at + 2] = UInt8(truncatingIfNeeded: v >> 8)
        self[at + 3] = UInt8(truncatingIfNeeded: v)
    }
    @inline(__always) func put64(_ v: UInt64, at: Int) {
        put32(UInt32(truncatingIfNeeded: v >> 32), at: at)
        put32(UInt32(truncatingIfNeeded: v), at: at + 4)
    }
    @inline(__always) var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }
}
