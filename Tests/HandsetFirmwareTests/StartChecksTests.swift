import CHandsetShim
import Glibc
import HandsetCore
import Testing
@testable import handset_fw

/// What the firmware checks before it runs: a seeded random generator, and no core dumps.
@Suite(.serialized) struct StartChecksTests {
    @Test func unseededGeneratorRefusesToStartAndProducesNothing() {
        let broken = HandsetRandom(entropy: .none)
        let seeded = broken.seeded
        #expect(!seeded)
        #expect(refusalToStart(random: broken) != nil)
        var out = [UInt8](repeating: 0xEE, count: 16)
        #expect(!out.withUnsafeMutableBytes { broken.fill($0) })
        #expect(out == [UInt8](repeating: 0xEE, count: 16))  // untouched: no output from an unseeded DRBG

        let good = HandsetRandom()
        let goodSeeded = good.seeded
        #expect(goodSeeded && refusalToStart(random: good) == nil)
        #expect(out.withUnsafeMutableBytes { good.fill($0) } && out != [UInt8](repeating: 0xEE, count: 16))
    }

    /// prctl(2) is not in the Glibc module: PR_GET_DUMPABLE = 3, PR_SET_DUMPABLE = 4 (linux/prctl.h).
    static let prctl = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl"),  // RTLD_DEFAULT
                                     to: (@convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32).self)

    /// The test process itself takes the call, then is made dumpable again (its core limit stays 0).
    @Test func coreDumpsAreOff() {
        let prctl = Self.prctl
        let (PR_GET_DUMPABLE, PR_SET_DUMPABLE): (Int32, Int32) = (3, 4)
        #expect(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1)
        #expect(hs_disable_core_dumps() == 0)
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0)
        #expect(limit.rlim_cur == 0 && limit.rlim_max == 0)
        #expect(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
        _ = prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    }
}
