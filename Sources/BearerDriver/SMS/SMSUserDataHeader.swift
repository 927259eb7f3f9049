/// Concatenated short message IE (TS 23.040 §9.2.3.24.1 IEI 0x00, §9.2.3.24.8 IEI 0x08).
public struct SMSConcat: Sendable, Equatable {
    public var reference: UInt16
    public var total: UInt8
    public var sequence: UInt8
    /// True when carried as IEI 0x08 (16-bit reference).
    public var wideReference: Bool

    public init(reference: UInt16, total: UInt8, sequence: UInt8, wideReference: Bool) {
        self.reference = reference; self.total = total; self.sequence = sequence; self.wideReference = wideReference
    }
}

/// Application port addressing IE (TS 23.040 §9.2.3.24.3 IEI 0x04, §9.2.3.24.4 IEI 0x05).
public struct SMSPorts: Sendable, Equatable {
    public var destination: UInt16
    public var source: UInt16
    /// True when carried as IEI 0x05 (16-bit ports).
    public var wide: Bool

    public init(destination: UInt16, source: UInt16, wide: Bool) {
        self.destination = destination; self.source = source; self.wide = wide
    }
}

/// The parts of a UDH the driver acts on. Other IEs are counted and skipped.
public struct SMSUserDataHeader: Sendable, Equatable {
    public var concat: SMSConcat?
    public var ports: SMSPorts?
    /// IEs skipped: unknown IEIs, known IEIs with the wrong length, and concat IEs the spec says to ignore.
    public var skipped: UInt8 = 0

    public init() {}

    /// Parses the IEs in `p[from..<end]` (the bytes after UDHL). Repeated IEs: the last one wins (§9.2.3.24).
    init(parsing p: UnsafeRawBufferPointer, from: Int, end: Int) throws(SMSPDUError) {
        var i = from
        while i < end {
            guard end - i >= 2 else { throw .badUserDataHeader }
            let iei = p[i]
            let len = Int(p[i + 1])
            let d = i + 2
            guard end - d >= len else { throw .badUserDataHeader }
            switch (iei, len) {
            case (0x00, 3):
                note(concat: UInt16(p[d]), total: p[d + 1], seq: p[d + 2], wide: false)
            case (0x08, 4):
                note(concat: UInt16(p[d]) << 8 | UInt16(p[d + 1]), total: p[d + 2], seq: p[d + 3], wide: true)
            case (0x04, 2):
                ports = SMSPorts(destination: UInt16(p[d]), source: UInt16(p[d + 1]), wide: false)
            case (0x05, 4):
                ports = SMSPorts(destination: UInt16(p[d]) << 8 | UInt16(p[d + 1]),
                                 source: UInt16(p[d + 2]) << 8 | UInt16(p[d + 3]), wide: true)
            default:
                skipped &+= 1
            }
            i = d + len
        }
    }

    // Total 0, sequence 0 or sequence above total: the receiver shall ignore the IE (§9.2.3.24.1).
    private mutating func note(concat ref: UInt16, total: UInt8, seq: UInt8, wide: Bool) {
        guard total > 0, seq > 0, seq <= total else {
            skipped &+= 1
            return
        }
        concat = SMSConcat(reference: ref, total: total, sequence: seq, wideReference: wide)
    }

    /// Encoded size of the IEs (without UDHL).
    public var encodedCount: Int {
        (concat.map { $0.wideReference ? 6 : 5 } ?? 0) + (ports.map { $0.wide ? 6 : 4 } ?? 0)
    }

    /// Writes UDHL and the IEs at `out[at...]`; returns octets written. Ports first, as most senders do.
    func write(into out: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        var o = at
        out[o] = UInt8(encodedCount); o += 1
        if let p = ports {
            if p.wide {
                out[o] = 0x05; out[o + 1] = 4
                out[o + 2] = UInt8(p.destination >> 8); out[o + 3] = UInt8(truncatingIfNeeded: p.destination)
                out[o + 4] = UInt8(p.source >> 8); out[o + 5] = UInt8(truncatingIfNeeded: p.source)
                o += 6
            } else {
                out[o] = 0x04; out[o + 1] = 2
                out[o + 2] = UInt8(truncatingIfNeeded: p.destination); out[o + 3] = UInt8(truncatingIfNeeded: p.source)
                o += 4
            }
        }
        if let c = concat {
            if c.wideReference {
                out[o] = 0x08; out[o + 1] = 4
                out[o + 2] = UInt8(c.reference >> 8); out[o + 3] = UInt8(truncatingIfNeeded: c.reference)
                out[o + 4] = c.total; out[o + 5] = c.sequence
                o += 6
            } else {
                out[o] = 0x00; out[o + 1] = 3
                out[o + 2] = UInt8(truncatingIfNeeded: c.reference); out[o + 3] = c.total; out[o + 4] = c.sequence
                o += 5
            }
        }
        return o - at
    }
}
