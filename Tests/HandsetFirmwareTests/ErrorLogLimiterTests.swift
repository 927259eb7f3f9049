import BearerDriver
import Testing
@testable import handset_fw

@Suite struct ErrorLogLimiterTests {
    @Test func firstOfAKindIsLoggedRepeatsOncePerMinuteWithTheCountLeftOut() {
        var l = ErrorLogLimiter()
        #expect(l.admit("SMS send", .cms(331), nowMs: 1_000) == 0)
        for t in stride(from: UInt64(2_000), to: 60_000, by: 1_000) { #expect(l.admit("SMS send", .cms(331), nowMs: t) == nil) }
        #expect(l.linesLeftOut == 58)
        #expect(l.admit("SMS send", .cms(331), nowMs: 61_000) == 58)  // a minute after the last line
        #expect(l.admit("SMS send", .cms(331), nowMs: 61_001) == nil)
    }

    @Test func operationErrorAndNumberEachMakeAKind() {
        var l = ErrorLogLimiter()
        #expect(l.admit("SMS send", .cms(331), nowMs: 0) == 0)
        #expect(l.admit("SMS send", .cms(500), nowMs: 1) == 0)      // another number
        #expect(l.admit("SMS send", .timeout, nowMs: 2) == 0)       // another error
        #expect(l.admit("SMS delete", .cms(331), nowMs: 3) == 0)    // another operation
        #expect(l.admit("SMS send", .cms(500), nowMs: 4) == nil)
        #expect(l.linesLeftOut == 1)
    }

    @Test func aFullTableMakesRoomFromTheKindLoggedLongestAgo() {
        var l = ErrorLogLimiter()
        for n in 0..<ErrorLogLimiter.kinds { #expect(l.admit("x", .cme(n), nowMs: UInt64(n)) == 0) }
        #expect(l.admit("x", .cme(100), nowMs: 100) == 0)  // takes cme 0's entry
        #expect(l.admit("x", .cme(1), nowMs: 101) == nil)  // still remembered
        #expect(l.admit("x", .cme(0), nowMs: 102) == 0)    // forgotten: logged again
    }
}
