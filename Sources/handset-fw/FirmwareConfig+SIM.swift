import HandsetCore

/// The SIM PIN (docs/firmware.md, "SIM PIN"): `sim_pin = DIGITS`, or `sim_pin_file = /PATH`, a file only its
/// owner may read, read by `run` at start (Firmware+SIM.swift), so `status` needs no access to it.
struct SIMPINConfig {
    var pin = FixedBytes<8>()
    var file = InlineArray<200, CChar>(repeating: 0)

    var fromFile: Bool { file[0] != 0 }

    /// 4 to 8 decimal digits (TS 11.11 §9.3: CHV1 is 4 to 8 digits).
    static func valid(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 4 && b.count <= 8 && b.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}

extension FirmwareConfig {
    /// Applies `k = v` if `k` is `sim_pin` or `sim_pin_file`; false for any other key.
    mutating func applySIM(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int) throws(ConfigError) -> Bool {
        if bytesEqual(k, "sim_pin") {
            guard v.count == 1, SIMPINConfig.valid(v[0]) else { throw ConfigError(line: line, reason: "sim_pin: 4 to 8 digits") }
            guard !sim.fromFile else { throw ConfigError(line: line, reason: "sim_pin: not with sim_pin_file") }
            let b = v[0]
            sim.pin.fill { o in
                o.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: b.count)
                return b.count
            }
            return true
        }
        if bytesEqual(k, "sim_pin_file") {
            let p = v[0]
            guard v.count == 1, p.count < 199, p[0] == 0x2F else {
                throw ConfigError(line: line, reason: "sim_pin_file: an absolute path")
            }
            guard sim.pin.count == 0 else { throw ConfigError(line: line, reason: "sim_pin_file: not with sim_pin") }
            for i in 0..<p.count { sim.file[i] = CChar(bitPattern: p[i]) }
            sim.file[p.count] = 0
            return true
        }
        return false
    }
}
