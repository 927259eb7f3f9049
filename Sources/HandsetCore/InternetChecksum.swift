/// RFC 1071 one's-complement sum, accumulated over several pieces (pseudo-header, header, data).
struct InternetChecksum {
    private var sum: UInt64 = 0

    mutating func add(_ b: UnsafeRawBufferPointer, from: Int, count: Int) {
        precondition(from >= 0 && count >= 0 && count <= b.count - from, "checksum range outside the buffer")
        if count > 0 { add16(Self.sum(b.baseAddress! + from, count: count)) }
    }

    /// The folded one's-complement sum of `count` bytes as big-endian 16-bit words (odd tail padded with zero).
    /// Sums 16-bit words in native byte order and swaps once at the end: the same sum, since byte order commutes with
    /// the fold (RFC 1071 §2(B)). On ARM (the boards) the bulk goes into 32-bit NEON lanes with widening adds, which
    /// need no carry handling: there the scalar add-with-carry took about twice the instructions per byte, and this is
    /// the data plane's only pass over the payload besides the AEAD's. Elsewhere: 64-bit words with end-around carry.
    static func sum(_ p: UnsafeRawPointer, count: Int) -> UInt16 {
        // Wrapping index arithmetic: `count` is a buffer length, so nothing here can overflow.
        var acc: UInt64 = 0
        var i = 0
#if arch(arm) || arch(arm64)
        var blocks = count >> 4
        while blocks > 0 {
            // A lane takes at most 0xFFFF per 16-byte block: after 65,536 blocks (1 MiB) a + b still fits 32 bits.
            var chunk = min(blocks, 65_536)
            blocks &-= chunk
            var a = SIMD8<UInt32>(), b = SIMD8<UInt32>()
            var q = p + i
            @inline(__always) func words(_ at: Int) -> SIMD8<UInt32> {
                SIMD8<UInt32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: at, as: SIMD8<UInt16>.self))
            }
            while chunk >= 8 {  // 128 bytes a turn: loop control is then a tenth of the instructions
                a &+= words(0); b &+= words(16); a &+= words(32); b &+= words(48)
                a &+= words(64); b &+= words(80); a &+= words(96); b &+= words(112)
                q += 128
                chunk &-= 8
            }
            while chunk > 0 {
                a &+= words(0)
                q += 16
                chunk &-= 1
            }
            i = q - p
            let s = a &+ b
            let lanes = (UInt64(s[0]) &+ UInt64(s[1])) &+ (UInt64(s[2]) &+ UInt64(s[3]))
                &+ (UInt64(s[4]) &+ UInt64(s[5])) &+ (UInt64(s[6]) &+ UInt64(s[7]))
            acc = addWithCarry(acc, lanes)
        }
#else
        // x86-64's baseline (SSE2) has no widening add, and add-with-carry is one `adc` there: 64-bit words win (the
        // SIMD loop above cost 96 more instructions per 1400 B here). Four chains, as each is a serial add and adc.
        var acc2: UInt64 = 0, acc3: UInt64 = 0, acc4: UInt64 = 0
        var blocks = count >> 5
        while blocks > 0 {
            acc = addWithCarry(acc, p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            acc2 = addWithCarry(acc2, p.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self))
            acc3 = addWithCarry(acc3, p.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self))
            acc4 = addWithCarry(acc4, p.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self))
            i &+= 32
            blocks &-= 1
        }
        acc = addWithCarry(addWithCarry(acc, acc2), addWithCarry(acc3, acc4))
#endif
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
