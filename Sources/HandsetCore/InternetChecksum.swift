/// RFC 1071 one's-complement sum, accumulated over several pieces (pseudo-header, header, data).
struct InternetChecksum {
    private var sum: UInt64 = 0

    mutating func add(_ b: UnsafeRawBufferPointer, from: Int, count: Int) {
        var i = from
        let end = from + count
        while i + 1 < end {
            sum &+= UInt64(b[i]) << 8 | UInt64(b[i + 1])
            i += 2
        }
        if i < end { sum &+= UInt64(b[i]) << 8 }
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

    var value: UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return ~UInt16(truncatingIfNeeded: s)
    }
}
