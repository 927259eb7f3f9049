// ESP open with a fixed SA: one of the self-test vectors' SAs (draft-mcgrew-gcm-test-01, RFC 7634) installed
// inbound afresh per input (table reset, then install), so every run starts from the same replay window.
// The tables live for the whole process: see Fuzz/README.md on why a table per input would leak in debug builds.
// Byte 0: bits 0-6 pick the vector, bit 7 the mode.
//   mode 0: the rest is a UDP payload, opened twice (the second time is a replay).
//   mode 1: byte 1 is a next header, the rest a payload sealed with the SA's outbound twin, then opened:
//           the fuzzer controls what lies behind the ICV (inner headers, selectors) without forging tags.
@testable import HandsetCore

func keyBytes(_ s: StaticString) -> [UInt8] {
    var out: [UInt8] = []
    var hi: UInt8? = nil
    for c in UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount) {
        let v: UInt8
        switch c {
        case 0x30...0x39: v = c - 0x30
        case 0x61...0x66: v = c - 0x61 + 10
        case 0x41...0x46: v = c - 0x41 + 10
        default: continue
        }
        if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
    }
    return out
}

func params(_ v: ESPVector, _ d: SADirection, keyLength: Int) -> SAParameters {
    SAParameters(spi: v.spi, direction: d, algorithm: v.algorithm, keyLength: keyLength, salt: v.salt,
                 local: IPAddress(10, 0, 0, 1), selector: SelectorPattern(remote: .anyV4, prefix: 0),
                 peer: IPAddress(192, 0, 2, 1), esn: v.esn)
}

nonisolated(unsafe) var plane: DataPlane<4, 2> = {
    var p = DataPlane<4, 2>()
    try! p.spd.append(SPDRule(SelectorPattern(remote: .anyV4, prefix: 0), .protect(template: 1)))
    return p
}()
nonisolated(unsafe) var twin = SATable<2>()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzESPOpen(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let vs = SelfTest.espVectors
    let v = vs[Int(input[0] & 0x7F) % vs.count]
    let key = keyBytes(v.key)
    plane.sas.reset()
    let slot = key.withUnsafeBytes { k in try! plane.sas.install(params(v, .inbound, keyLength: k.count), key: k) }
    plane.sas.primeSequence(slot: slot, next: v.seq)
    var out = [UInt8](repeating: 0, count: size + 64)

    if input[0] & 0x80 == 0 {
        let wire = UnsafeRawBufferPointer(rebasing: input[1...])
        out.withUnsafeMutableBytes { o in
            for _ in 0..<2 { _ = try? plane.open(wire, into: o) }
        }
        return 0
    }
    guard size >= 2 else { return 0 }
    let nextHeader = input[1]
    let payload = UnsafeRawBufferPointer(rebasing: input[2...])
    twin.reset()
    let t = key.withUnsafeBytes { k in try! twin.install(params(v, .outbound, keyLength: k.count), key: k) }
    twin.primeSequence(slot: t, next: v.seq)
    var wire = [UInt8](repeating: 0, count: size + 64)
    guard let n = wire.withUnsafeMutableBytes({ w in try? twin.seal(slot: t, payload: payload, nextHeader: nextHeader, into: w) })
    else { return 0 }
    wire.withUnsafeBytes { w in
        let sealed = UnsafeRawBufferPointer(rebasing: w[0..<n])
        out.withUnsafeMutableBytes { o in
            // What the twin sealed must verify and decrypt to itself.
            let r = try! plane.sas.verify(sealed, into: o)
            precondition(r.nextHeader == nextHeader && r.length == payload.count)
            precondition(payload.elementsEqual(UnsafeRawBufferPointer(rebasing: o[0..<r.length])))
            for _ in 0..<2 { _ = try? plane.open(sealed, into: o) }
        }
    }
    return 0
}
