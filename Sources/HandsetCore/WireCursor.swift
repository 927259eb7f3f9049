/// Field-by-field writer over a caller buffer. The first overflow is sticky (the ubxlib habit): later writes
/// are no-ops, and the caller checks `ok` once at the end.
public struct WireWriter {
    let buf: UnsafeMutableRawBufferPointer
    public private(set) var count = 0
    public private(set) var ok = true

    public init(_ buf: UnsafeMutableRawBufferPointer) { self.buf = buf }

    @inline(__always) mutating func room(_ n: Int) -> Bool {
        if ok && count + n <= buf.count { return true }
        ok = false
        return false
    }
    public mutating func u8(_ v: UInt8) { if room(1) { buf[count] = v; count += 1 } }
    public mutating func u16(_ v: UInt16) { if room(2) { buf.put16(v, at: count); count += 2 } }
    public mutating func u32(_ v: UInt32) { if room(4) { buf.put32(v, at: count); count += 4 } }
    public mutating func u40(_ v: UInt64) {
        if room(5) {
            buf[count] = UInt8(truncatingIfNeeded: v >> 32)
            buf.put32(UInt32(truncatingIfNeeded: v), at: count + 1)
            count += 5
        }
    }
    public mutating func u64(_ v: UInt64) { if room(8) { buf.put64(v, at: count); count += 8 } }
    public mutating func bytes(_ b: UnsafeRawBufferPointer) {
        if b.count > 0, room(b.count) {
            (buf.baseAddress! + count).copyMemory(from: b.baseAddress!, byteCount: b.count)
            count += b.count
        }
    }
    public mutating func address(_ a: IPAddress) {
        if room(a.isV6 ? 16 : 4) { a.write(to: buf, at: count); count += a.isV6 ? 16 : 4 }
    }
}

/// Field-by-field reader with a sticky failure: reading past the end yields zeros and clears `ok`.
public struct WireReader {
    let buf: UnsafeRawBufferPointer
    public private(set) var offset = 0
    public private(set) var ok = true

    public init(_ buf: UnsafeRawBufferPointer) { self.buf = buf }

    public var remaining: Int { ok ? buf.count - offset : 0 }

    @inline(__always) mutating func take(_ n: Int) -> Int? {
        guard ok, n >= 0, offset + n <= buf.count else { ok = false; return nil }
        defer { offset += n }
        return offset
    }
    public mutating func u8() -> UInt8 { take(1).map { buf[$0] } ?? 0 }
    public mutating func u16() -> UInt16 { take(2).map { buf.be16($0) } ?? 0 }
    public mutating func u32() -> UInt32 { take(4).map { buf.be32($0) } ?? 0 }
    public mutating func u40() -> UInt64 { take(5).map { UInt64(buf[$0]) << 32 | UInt64(buf.be32($0 + 1)) } ?? 0 }
    public mutating func u64() -> UInt64 { take(8).map { buf.be64($0) } ?? 0 }
    /// A view of the next `n` bytes, valid while the underlying buffer is.
    public mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer {
        guard let at = take(n) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: buf[at..<(at + n)])
    }
    public mutating func rest() -> UnsafeRawBufferPointer { bytes(remaining) }
    public mutating func address(v6: Bool) -> IPAddress {
        guard let at = take(v6 ? 16 : 4) else { return .anyV4 }
        return IPAddress(bytes: buf, at: at, v6: v6)
    }
}
