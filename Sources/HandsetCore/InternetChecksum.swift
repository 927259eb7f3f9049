/// RFC 1071 one's-complement sum, accumulated over several pieces (pseudo-header, header, data).
struct InternetChecksum {
    private var sum: UInt64 = 0

    mutating func add(_ b: UnsafeRawBufferPointer, from: Int, count: Int) {
        precondition(from >= 0 && count >= 0 && count <= b.count - from, "checksum range outside the buffer")
        if count > 0 { add16(Self.sum(b.baseAddress! + from, count: count)) }
    }

    /// The folded one's-complement sum of `count` bytes as big-endian 16-bit words (odd tail padded with zero).
    /// Adds 64-bit words in native byte order with end-around carry and swaps once at the end: the same sum, since
    /// 2^64 - 1 is a multiple of 2^16 - 1 and byte order commutes with the fold (RFC 1071 §2(B), §4.1 unrolling).
    static func sum(_ p: UnsafeRawPointer, count: Int) -> UInt16 {
        var acc: UInt64 = 0
        // Wrapping index arithmetic: `count` is a buffer length, so nothing here can overflow.
        var i = 0
        // Two accumulators, so the add-with-carry chains of alternate words run side by side.
        var acc2: UInt64 = 0
        var blocks = count >> 5
        while blocks > 0 {
            acc = addWithCarry(acc, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            acc2 = addWithCarry(acc2, p.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self))
            acc = addWithCarry(acc, p.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self))
            acc2 = addWithCarry(acc2, p.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self))
            i &+= 32
            blocks &-= 1
        }
        acc = addWithCarry(acc, acc2)
        var words = (count &- i) >> 3
        while words > 0 {
            acc = addWithCarry(acc, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
            words &-= 1
        }
        // Tail of 0...7 bytes, as one word zero-padded to 8 bytes (built big-endian, then put in native order).
        var tail: UInt64 = 0
        var shift: UInt64 = 56
        while i < count {
            tail |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift &-= 8
            i &+= 1
        }
        acc = addWithCarry(acc, UInt64(bigEndian: tail))
        var native = (acc & 0xFFFF_FFFF) &+ (acc >> 32)
        while native >> 16 != 0 { native = (native & 0xFFFF) &+ (native >> 16) }
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: native))
    }

    @inline(__always) private static func addWithCarry(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (r, carry) = a.addingReportingOverflow(b)
        return r &+ (carry ? 1 : 0)
    }

    mutating func add16(_ v: UInt16) { sum &+= UInt64(v) }
    mutating func add32(_ v: UInt32) { sum &+= UInt64(v >> 16) &+ UInt64(v & 0xFFFF) }
    mutating func add(_ a: IPAddress) {
        if a.isV6 {
            add32(UInt32(truncatingIfNeeded: a.high >> 32)); add32(UInt32(truncatingIfNeeded: a.high))
            add32(UInt32(truncatingIfNeeded: a.low >> 32)); add32(UInt32(truncatingIfNeeded: a.low))
        } else {
            add32(a.v4)
        }
    }

    /// The UDP pseudo-header (RFC 768; RFC 8200 §8.1 for IPv6).
    mutating func addPseudoHeader(src: IPAddress, dst: IPAddress, udpLength: Int) {
        add(src); add(dst)
        add16(UInt16(IPProto.udp))
        if src.isV6 { add32(UInt32(udpLength)) } else { add16(UInt16(udpLength)) }
    }

    var value: UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return ~UInt16(truncatingIfNeeded: s)
    }
}
