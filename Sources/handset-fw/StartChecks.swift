import HandsetCore

/// Why the firmware must not run with this generator, or nil. Unseeded, every hello, SPI and SMS reference
/// would be predictable.
func refusalToStart(random: borrowing HandsetRandom) -> StaticString? {
    random.seeded ? nil : "the random number generator could not be seeded (getrandom failed); refusing to start"
}
