/// TP-SCTS / TP-DT (TS 23.040 §9.2.3.11): local time plus the offset from UTC in quarter hours.
public struct SMSTimestamp: Sendable, Equatable {
    public var year: UInt8 = 0  // two digits
    public var month: UInt8 = 0
    public var day: UInt8 = 0
    public var hour: UInt8 = 0
    public var minute: UInt8 = 0
    public var second: UInt8 = 0
    public var quarterHours: Int8 = 0

    public init() {}

    public init(year: UInt8, month: UInt8, day: UInt8, hour: UInt8, minute: UInt8, second: UInt8, quarterHours: Int8) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
        self.quarterHours = quarterHours
    }

    /// Swapped BCD; bit 3 of the zone's first semi-octet is the sign. Bad digits decode to values above 9, never trap.
    init(octets p: UnsafeRawBufferPointer, at i: Int) {
        @inline(__always) func bcd(_ b: UInt8) -> UInt8 { (b & 0x0F) &* 10 &+ (b >> 4) }
        year = bcd(p[i]); month = bcd(p[i + 1]); day = bcd(p[i + 2])
        hour = bcd(p[i + 3]); minute = bcd(p[i + 4]); second = bcd(p[i + 5])
        let z = p[i + 6]
        let magnitude = Int8((z & 0x07) &* 10 &+ (z >> 4) % 10)
        quarterHours = z & 0x08 != 0 ? -magnitude : magnitude
    }
}
