extension ModemDialect {
    /// Picks a dialect from an ATI, AT+CGMI or AT+CGMM answer line (manufacturer or model text).
    /// Unknown modules get the generic 3GPP profile.
    public static func detect(_ identity: UnsafeRawBufferPointer) -> ModemDialect {
        // The SIM800 family first: its model names share SIMCom's prefixes.
        if contains(identity, "SIM800") || contains(identity, "SIM808") || contains(identity, "SIM868")
            || contains(identity, "SIM900") {
            return .sim800
        }
        if contains(identity, "SIM7000") { return .sim7000 }  // before SIM7: the toolkit, not SIM7600's sockets
        if contains(identity, "SIMCOM") || contains(identity, "SIM7") || contains(identity, "SIM8")
            || contains(identity, "SIM5") || contains(identity, "A76") {
            return .simcom
        }
        if contains(identity, "QUECTEL") || contains(identity, "BG9") || contains(identity, "EG2")
            || contains(identity, "EC2") || contains(identity, "M66") || contains(identity, "BG77") {
            return .quectel
        }
        if contains(identity, "U-BLOX") || contains(identity, "UBLOX") || contains(identity, "SARA")
            || contains(identity, "LARA") || contains(identity, "TOBY") {
            return .ublox
        }
        return .generic
    }

    /// Case-insensitive ASCII substring search.
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        if n == 0 || n > haystack.count { return false }
        let p = needle.utf8Start
        var i = 0
        while i + n <= haystack.count {
            var j = 0
            while j < n && ASCII.upper(haystack[i + j]) == ASCII.upper(p[j]) { j += 1 }
            if j == n { return true }
            i += 1
        }
        return false
    }
}
