/// What the SA table tells the key-delegation layer. Soft expiry and sequence exhaustion ask for a rekey;
/// hard expiry means the SA is already gone.
public enum SAEvent: Equatable, Sendable {
    case softExpired(spi: UInt32, direction: SADirection)
    case hardExpired(spi: UInt32, direction: SADirection)
    case sequenceExhausted(spi: UInt32)
}
