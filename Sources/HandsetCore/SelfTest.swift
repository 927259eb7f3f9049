/// Known-answer tests the firmware runs on the board (`handset-fw selftest`). Every vector comes from a
/// published source, named beside it; the same checks run in the host test suite.
public enum SelfTest {
    public struct Report {
        public var passed = 0
        public var failed = 0
        mutating func record(_ name: StaticString, _ ok: Bool) {
            if ok { passed += 1 } else { failed += 1; print("FAIL: \(name)") }
        }
    }

    public static func run() -> Report {
        var r = Report()
        runVectors(&r)
        return r
    }
}
