import CHandsetShim

/// ESP seal and open on one SA (RFC 4303 with RFC 4106 / RFC 7634 AEAD, RFC 8750 implicit IV).
/// Neither allocates: nonce and AAD live in a 24-byte stack scratch, output goes to the caller's buffer.
extension SATable {
    /// Encrypts the `payloadLength` plaintext bytes already placed at `out[headerLength...]` and writes the
    /// ESP header, padding, trailer and ICV around them. Returns the wire length.
    /// `iv` overrides the explicit IV (it defaults to the 64-bit sequence number); tools and vectors only.
    public mutating func sealInPlace(slot i: Int, payloadLength: Int, nextHeader: UInt8,
                                     into out: UnsafeMutableRawBufferPointer, iv: UInt64? = nil) throws(ESPError) -> Int {
        let p = slots[i].params
        let hdr = ESPFormat.headerLength(p)
        let pad = ESPFormat.padLength(payload: payloadLength)
        let plain = payloadLength + pad + 2
        let wire = hdr + plain + p.icvLength
        guard out.count >= wire else { throw .bufferTooSmall }
        if exceedsHardLimit(slot: i, bytes: payloadLength) {
            hardExpire(slot: i)
            throw .expired
        }
        let seq = slots[i].state.seq &+ 1
        if seq == 0 || (!p.esn && seq > UInt64(UInt32.max)) {
            // Raised once: later attempts are refused quietly so they cannot flood the event queue.
            if !slots[i].state.exhausted {
                slots[i].state.exhausted = true
                events.push(.sequenceExhausted(spi: p.spi))
            }
            throw .sequenceExhausted
        }
        let ivValue = p.implicitIV ? seq : (iv ?? seq)

        out.put32(p.spi, at: 0)
        out.put32(UInt32(truncatingIfNeeded: seq), at: 4)
        if !p.implicitIV { out.put64(ivValue, at: 8) }
        var k = 0
        while k < pad { out[hdr + payloadLength + k] = UInt8(k + 1); k += 1 }
        out[hdr + payloadLength + pad] = UInt8(pad)
        out[hdr + payloadLength + pad + 1] = nextHeader

        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let rc = withUnsafeMutableBytes(of: &scratch) { s -> Int32 in
            let aadLen = Self.fillNonceAndAAD(s, p: p, seq: seq, iv: ivValue)
            let base = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let sb = s.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return hs_aead_seal(context(slot: i), sb, sb + 12, aadLen, base + hdr, base + hdr, plain,
                                base + hdr + plain, p.icvLength)
        }
        guard rc == HS_OK else { throw .malformed }
        slots[i].state.seq = seq
        account(slot: i, bytes: payloadLength)
        return wire
    }

    /// Copies `payload` behind the header and seals it: the plain ESP API used by tools and vectors.
    public mutating func seal(slot i: Int, payload: UnsafeRawBufferPointer, nextHeader: UInt8,
                              into out: UnsafeMutableRawBufferPointer, iv: UInt64? = nil) throws(ESPError) -> Int {
        let hdr = ESPFormat.headerLength(slots[i].params)
        guard out.count >= ESPFormat.wireLength(slots[i].params, payload: payload.count) else { throw .bufferTooSmall }
        if payload.count > 0 {
            (out.baseAddress! + hdr).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        }
        return try sealInPlace(slot: i, payloadLength: payload.count, nextHeader: nextHeader, into: out, iv: iv)
    }

    /// Authenticates and decrypts one ESP packet into `out`, and accepts it. The payload is `out[0..<length]`.
    public mutating func open(_ wire: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer)
        throws(ESPError) -> InboundESP
    {
        let r = try verify(wire, into: out)
        accept(r)
        return r
    }

    /// Moves the window and counts the packet: call only for a packet `verify` returned and the caller keeps.
    public mutating func accept(_ r: InboundESP) {
        slots[r.slot].state.window.commit(r.seq)
        account(slot: r.slot, bytes: r.length)
    }

    /// Authenticates and decrypts without accepting: SA state is untouched apart from error counters.
    /// Order (as strongSwan and RFC 4303 §3.4 ask): SPI, length, replay pre-check, ICV, padding.
    public mutating func verify(_ wire: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer)
        throws(ESPError) -> InboundESP
    {
        guard wire.count >= ESPFormat.fixedHeader else { throw .truncated }
        guard let i = inboundSlot(spi: wire.be32(0)) else { throw .unknownSPI }
        let p = slots[i].params
        let hdr = ESPFormat.headerLength(p)
        guard wire.count >= hdr + 4 + p.icvLength else { throw .truncated }
        let plain = wire.count - hdr - p.icvLength
        guard plain % 4 == 0 else { throw .malformed }
        guard out.count >= plain else { throw .bufferTooSmall }

        let low = wire.be32(4)
        let seq: UInt64
        if p.esn {
            guard let s = ESPFormat.inferESN(low: low, top: slots[i].state.window.top, window: SAReplayWindow.size) else {
                slots[i].state.counters.replays &+= 1
                throw .tooOld
            }
            seq = s
        } else {
            seq = UInt64(low)
        }
        switch slots[i].state.window.check(seq) {
        case .fresh: break
        case .replayed: slots[i].state.counters.replays &+= 1; throw .replayed
        case .tooOld: slots[i].state.counters.replays &+= 1; throw .tooOld
        }
        if exceedsHardLimit(slot: i, bytes: 0) {
            hardExpire(slot: i)
            throw .expired
        }

        let ivValue = p.implicitIV ? seq : wire.be64(8)
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let rc = withUnsafeMutableBytes(of: &scratch) { s -> Int32 in
            let aadLen = Self.fillNonceAndAAD(s, p: p, seq: seq, iv: ivValue)
            let src = wire.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let dst = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let sb = s.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return hs_aead_open(context(slot: i), sb, sb + 12, aadLen, src + hdr, dst, plain,
                                src + hdr + plain, p.icvLength)
        }
        guard rc == HS_OK else {
            slots[i].state.counters.icvFailures &+= 1
            throw .authenticationFailed
        }

        let padLen = Int(out[plain - 2])
        let nextHeader = out[plain - 1]
        guard padLen <= plain - 2, Self.paddingIsMonotonic(out, at: plain - 2 - padLen, count: padLen) else {
            slots[i].state.counters.paddingErrors &+= 1
            throw .badPadding
        }
        let length = plain - 2 - padLen
        // Same rule as seal: a packet whose bytes would cross the hard limit is refused and ends the SA.
        if exceedsHardLimit(slot: i, bytes: length) {
            hardExpire(slot: i)
            throw .expired
        }
        return InboundESP(slot: i, nextHeader: nextHeader, length: length, seq: seq)
    }

    /// Pad bytes must read 1, 2, 3, ... (RFC 4303 §2.4).
    @inline(__always) static func paddingIsMonotonic(_ b: UnsafeMutableRawBufferPointer, at start: Int, count: Int) -> Bool {
        var ok = true
        var k = 0
        while k < count { ok = ok && b[start + k] == UInt8(truncatingIfNeeded: k + 1); k += 1 }
        return ok
    }

    /// Nonce = salt || IV at s[0..<12]; AAD = SPI || [ESN high] || seq low at s[12...]. Returns the AAD length.
    @inline(__always) static func fillNonceAndAAD(_ s: UnsafeMutableRawBufferPointer, p: SAParameters,
                                                   seq: UInt64, iv: UInt64) -> Int {
        s.put32(p.salt, at: 0)
        s.put64(iv, at: 4)
        s.put32(p.spi, at: 12)
        if p.esn {
            s.put32(UInt32(truncatingIfNeeded: seq >> 32), at: 16)
            s.put32(UInt32(truncatingIfNeeded: seq), at: 20)
            return 12
        }
        s.put32(UInt32(truncatingIfNeeded: seq), at: 16)
        return 8
    }
}

/// A packet that passed every ESP check; its payload is `out[0..<length]`.
public struct InboundESP: Equatable, Sendable {
    public var slot: Int
    public var nextHeader: UInt8
    public var length: Int
    public var seq: UInt64
}
