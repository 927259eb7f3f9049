// Big-endian field access on raw buffers. Callers check bounds once per packet; these only read and write, with one
// unaligned load or store per field (the buffer pointer still checks bounds in debug builds). The byte-by-byte form
// paid an overflow check per byte on the packet path.

extension UnsafeRawBufferPointer {
    @inline(__always) func be16(_ at: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    @inline(__always) func be32(_ at: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    @inline(__always) func be64(_ at: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) func put16(_ v: UInt16, at: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt16.self)
    }
    @inline(__always) func put32(_ v: UInt32, at: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt32.self)
    }
    @inline(__always) func put64(_ v: UInt64, at: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt64.self)
    }
    @inline(__always) var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(self) }
}
