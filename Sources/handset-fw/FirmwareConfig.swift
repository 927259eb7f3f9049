import CHandsetShim
import HandsetCore

/// The firmware's configuration file: `key = value` lines, `#` comments. See docs/firmware.md.
struct FirmwareConfig {
    enum Dialect: Equatable { case auto, simcom, sim800, sim800Single, quectel, ublox, generic }

    var stateDir = InlineArray<200, CChar>(repeating: 0)
    var serial = InlineArray<200, CChar>(repeating: 0)
    var baud: UInt32 = 115_200
    var rtscts = false
    var dialect = Dialect.auto
    var gatewayNumber = FixedBytes<24>()
    var apn = FixedBytes<64>()
    var appSocket = SocketPath(repeating: 0)
    var appUID: UInt32? = nil
    var appGroup: Int64 = -1
    var localAddress = IPAddress(10, 0, 0, 2)
    var espLocalPort: UInt16 = 4500
    var power = ModemPowerConfig()
    var tun = TUNConfig()
    var kdUDP = KDUDPConfig()
    var sim = SIMPINConfig()
}

struct ConfigError: Error {
    var line: Int  // 0: the file as a whole (a required key missing)
    var reason: StaticString  // names the allowed values
    var key = FixedBytes<32>()  // the line's key, as written (cut at 32 bytes)
    var unknownKey = false

    static func unknown(line: Int) -> ConfigError { ConfigError(line: line, reason: "unknown key", unknownKey: true) }
}

extension FirmwareConfig {
    /// Every key `parse` knows, for the unknown-key message; FirmwareConfigTests checks it against docs/firmware.md.
    static let keys: [StaticString] = [
        "state_dir", "serial", "baud", "flow_control", "dialect", "gateway_number", "apn", "app_socket", "app_uid", "app_group", "local_address",
        "esp_local_port", "power_key_gpio", "reset_gpio", "gpio_active_low", "power_key_ms", "reset_ms",
        "modem_boot_ms", "recovery_after", "kd_transport", "gateway_udp", "kd_sms_retry", "tun", "tun_address",
        "tun_mtu", "rule", "default", "sim_pin", "sim_pin_file",
    ]
}

/// One line's tokens, split on blanks, as byte views into the file buffer.
struct Tokens {
    var items = InlineArray<8, (Int, Int)>(repeating: (0, 0))
    var count = 0
    let buf: UnsafeRawBufferPointer

    init(_ buf: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        self.buf = buf
        var i = start
        while i < end && count < 8 {
            while i < end && (buf[i] == 0x20 || buf[i] == 0x09) { i += 1 }
            let s = i
            while i < end && buf[i] != 0x20 && buf[i] != 0x09 { i += 1 }
            if i > s { items[count] = (s, i); count += 1 }
        }
    }

    subscript(i: Int) -> UnsafeRawBufferPointer {
        let (s, e) = items[i]
        return UnsafeRawBufferPointer(rebasing: buf[s..<e])
    }
}

func bytesEqual(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    guard b.count == s.utf8CodeUnitCount else { return false }
    for i in 0..<b.count where b[i] != s.utf8Start[i] { return false }
    return true
}

func parseUInt(_ b: UnsafeRawBufferPointer, max: UInt64) -> UInt64? {
    guard b.count > 0, b.count <= 20 else { return nil }
    var v: UInt64 = 0
    for c in b {
        guard c >= 0x30 && c <= 0x39 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
        guard !o1, !o2 else { return nil }
        v = a
    }
    return v <= max ? v : nil
}

/// Dotted-quad IPv4 only: the module's sockets are IPv4.
func parseIPv4(_ b: UnsafeRawBufferPointer) -> IPAddress? {
    var parts: (UInt32, Int) = (0, 0)
    var cur: UInt32 = 0, digits = 0
    for c in b {
        if c == 0x2E {
            guard digits > 0, cur <= 255, parts.1 < 3 else { return nil }
            parts = (parts.0 << 8 | cur, parts.1 + 1); cur = 0; digits = 0
        } else if c >= 0x30 && c <= 0x39, digits < 3 {
            cur = cur * 10 + UInt32(c - 0x30); digits += 1
        } else {
            return nil
        }
    }
    guard digits > 0, cur <= 255, parts.1 == 3 else { return nil }
    return IPAddress(v4: parts.0 << 8 | cur)
}

/// `ADDRESS<separator>NUMBER` (ADDR/PREFIX, ADDR:PORT), split at the last separator.
func parseIPv4AndNumber(_ b: UnsafeRawBufferPointer, separator: UInt8, max: UInt64) -> (IPAddress, UInt64)? {
    var at = -1
    for i in 0..<b.count where b[i] == separator { at = i }
    guard at > 0, let addr = parseIPv4(UnsafeRawBufferPointer(rebasing: b[0..<at])),
          let n = parseUInt(UnsafeRawBufferPointer(rebasing: b[(at + 1)...]), max: max) else { return nil }
    return (addr, n)
}

func parsePorts(_ b: UnsafeRawBufferPointer) -> PortRange? {
    if b.count == 1 && b[0] == 0x2A { return .any }  // *
    var dash = -1
    for i in 0..<b.count where b[i] == 0x2D { dash = i }
    if dash < 0 { return parseUInt(b, max: 65535).map { PortRange(UInt16($0)) } }
    guard let lo = parseUInt(UnsafeRawBufferPointer(rebasing: b[0..<dash]), max: 65535),
          let hi = parseUInt(UnsafeRawBufferPointer(rebasing: b[(dash + 1)...]), max: 65535), lo <= hi else { return nil }
    return PortRange(UInt16(lo), UInt16(hi))
}

extension FirmwareConfig {
    /// Parses `text`, appending SPD rules to `spd`. Unknown keys are errors: a typo must not silently weaken policy.
    static func parse<let n: Int>(_ text: UnsafeRawBufferPointer, spd: inout SPD<n>) throws(ConfigError) -> FirmwareConfig {
        var c = FirmwareConfig()
        var lineNo = 0
        var start = 0
        while start < text.count {
            var end = start
            while end < text.count && text[end] != 0x0A { end += 1 }
            lineNo += 1
            var stop = end
            for i in start..<end where text[i] == 0x23 { stop = min(stop, i) }  // '#'
            var eq = -1
            for i in start..<stop where text[i] == 0x3D && eq < 0 { eq = i }
            let key = Tokens(text, from: start, to: eq < 0 ? stop : eq)
            if key.count > 0 {
                do throws(ConfigError) {
                    guard eq >= 0, key.count == 1 else { throw ConfigError(line: lineNo, reason: "expected key = value") }
                    let v = Tokens(text, from: eq + 1, to: stop)
                    guard v.count > 0 else { throw ConfigError(line: lineNo, reason: "missing value") }
                    try c.apply(key[0], v, line: lineNo, spd: &spd)
                } catch {
                    var e = error
                    let k = key[0]
                    e.key.fill { o in
                        let n = min(k.count, o.count)
                        o.baseAddress!.copyMemory(from: k.baseAddress!, byteCount: n)
                        return n
                    }
                    throw e
                }
            }
            start = end + 1
        }
        guard c.stateDir[0] != 0 else { throw ConfigError(line: 0, reason: "state_dir is required") }
        guard c.serial[0] != 0 else { throw ConfigError(line: 0, reason: "serial is required") }
        guard c.gatewayNumber.count > 0 else { throw ConfigError(line: 0, reason: "gateway_number is required") }
        try c.checkTUN()
        try c.checkKDUDP()
        try c.checkApp()
        return c
    }

    private mutating func apply<let n: Int>(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int,
                                            spd: inout SPD<n>) throws(ConfigError) {
        if bytesEqual(k, "state_dir") { try copyPath(v[0], into: &stateDir, line: line) }
        else if bytesEqual(k, "serial") { try copyPath(v[0], into: &serial, line: line) }
        else if bytesEqual(k, "baud") {
            guard let b = parseUInt(v[0], max: 921_600), b >= 9600 else { throw ConfigError(line: line, reason: "baud must be 9600...921600") }
            baud = UInt32(b)
        } else if bytesEqual(k, "flow_control") {
            guard bytesEqual(v[0], "rtscts") || bytesEqual(v[0], "none") else {
                throw ConfigError(line: line, reason: "flow_control: rtscts or none")
            }
            rtscts = bytesEqual(v[0], "rtscts")
        }
        else if bytesEqual(k, "dialect") {
            let d = v[0]
            if bytesEqual(d, "auto") { dialect = .auto }
            else if bytesEqual(d, "simcom") { dialect = .simcom }
            else if bytesEqual(d, "sim800") { dialect = .sim800 }
            else if bytesEqual(d, "sim800-single") { dialect = .sim800Single }
            else if bytesEqual(d, "quectel") { dialect = .quectel }
            else if bytesEqual(d, "ublox") { dialect = .ublox }
            else if bytesEqual(d, "generic") { dialect = .generic }
            else { throw ConfigError(line: line, reason: "dialect: auto, simcom, sim800(-single), quectel, ublox or generic") }
        } else if bytesEqual(k, "gateway_number") { try copyBytes(v[0], into: &gatewayNumber, line: line) }
        else if bytesEqual(k, "apn") { try copyBytes(v[0], into: &apn, line: line) }
        else if try applyApp(k, v, line: line) {
        } else if bytesEqual(k, "esp_local_port") {
            guard let p = parseUInt(v[0], max: 65535) else { throw ConfigError(line: line, reason: "esp_local_port: 0...65535") }
            espLocalPort = UInt16(p)
        } else if bytesEqual(k, "local_address") {
            guard let a = parseIPv4(v[0]) else { throw ConfigError(line: line, reason: "local_address: an IPv4 address A.B.C.D") }
            localAddress = a
        } else if try applyPower(k, v, line: line) {
        } else if bytesEqual(k, "default") {
            spd.defaultAction = try Self.action(v[0], template: 0, line: line)
        } else if bytesEqual(k, "rule") {
            try Self.rule(v, line: line, spd: &spd)
        } else if try applyTUN(k, v, line: line) {
        } else if try applyKDUDP(k, v, line: line) {
        } else if try applySIM(k, v, line: line) {
        } else {
            throw ConfigError.unknown(line: line)
        }
    }

    /// rule = protect|bypass|discard|secret ADDR/PREFIX udp|any|N LOCAL_PORTS REMOTE_PORTS [template=N]
    static func rule<let n: Int>(_ v: Tokens, line: Int, spd: inout SPD<n>) throws(ConfigError) {
        guard v.count == 5 || v.count == 6 else { throw ConfigError(line: line, reason: "rule needs 5 or 6 fields") }
        var template: UInt16 = 1
        if v.count == 6 {
            let t = v[5]
            guard t.count > 9, bytesEqual(UnsafeRawBufferPointer(rebasing: t[0..<9]), "template="),
                  let n = parseUInt(UnsafeRawBufferPointer(rebasing: t[9...]), max: 65535) else {
                throw ConfigError(line: line, reason: "expected template=N")
            }
            template = UInt16(n)
        }
        let secret = bytesEqual(v[0], "secret")
        let action = secret ? PolicyAction.protect(template: template) : try Self.action(v[0], template: template, line: line)
        guard case let (addr, prefix)? = parseIPv4AndNumber(v[1], separator: 0x2F, max: 32) else {
            throw ConfigError(line: line, reason: "expected ADDRESS/PREFIX")
        }
        let proto: UInt8
        if bytesEqual(v[2], "udp") { proto = IPProto.udp }
        else if bytesEqual(v[2], "any") { proto = IPProto.any }
        else if let p = parseUInt(v[2], max: 255) { proto = UInt8(p) }
        else { throw ConfigError(line: line, reason: "protocol: udp, any or a number") }
        guard let lp = parsePorts(v[3]), let rp = parsePorts(v[4]) else { throw ConfigError(line: line, reason: "ports: *, N or N-M") }
        do {
            try spd.append(SPDRule(SelectorPattern(remote: addr, prefix: Int(prefix), proto: proto, localPorts: lp, remotePorts: rp),
                                   action, secret: secret))
        } catch {
            throw ConfigError(line: line, reason: "too many rules")
        }
    }

    static func action(_ b: UnsafeRawBufferPointer, template: UInt16, line: Int) throws(ConfigError) -> PolicyAction {
        if bytesEqual(b, "protect") { return .protect(template: template) }
        if bytesEqual(b, "bypass") { return .bypass }
        if bytesEqual(b, "discard") { return .discard }
        throw ConfigError(line: line, reason: "action: protect, bypass, discard or secret")
    }

    private func copyPath(_ b: UnsafeRawBufferPointer, into out: inout InlineArray<200, CChar>, line: Int) throws(ConfigError) {
        guard b.count < 199 else { throw ConfigError(line: line, reason: "path too long") }
        for i in 0..<b.count { out[i] = CChar(bitPattern: b[i]) }
        out[b.count] = 0
    }

    private func copyBytes<let m: Int>(_ b: UnsafeRawBufferPointer, into out: inout FixedBytes<m>, line: Int) throws(ConfigError) {
        guard b.count <= m else { throw ConfigError(line: line, reason: "value too long") }
        out.fill { o in
            if b.count > 0 { o.baseAddress!.copyMemory(from: b.baseAddress!, byteCount: b.count) }
            return b.count
        }
    }
}
