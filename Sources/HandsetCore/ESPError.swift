/// Why an ESP packet was not produced or not accepted. Every case leaves the SA's sequence, window and
/// traffic counters as they were; the matching error counter is bumped instead.
public enum ESPError: Error, Equatable, Sendable {
    case truncated
    case malformed
    case unknownSPI
    case replayed
    case tooOld
    case authenticationFailed
    case badPadding
    case expired
    case sequenceExhausted
    case bufferTooSmall
    case badInnerPacket
    case policyMismatch
}
