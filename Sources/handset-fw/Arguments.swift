import CHandsetShim

/// argv without Foundation or CommandLine (neither exists in Embedded Swift). Matching is bytewise, so
/// the firmware does not pull in the Unicode tables that String comparison needs.
struct Arguments {
    var count: Int { Int(hs_argc()) }

    func isEqual(_ i: Int, _ word: StaticString) -> Bool {
        guard let p = hs_argv(Int32(i)) else { return false }
        let w = word.utf8Start
        var k = 0
        while k < word.utf8CodeUnitCount {
            if UInt8(bitPattern: p[k]) != w[k] { return false }
            k += 1
        }
        return p[k] == 0
    }

    func printArgument(_ i: Int) {
        guard let p = hs_argv(Int32(i)) else { return }
        print(String(cString: p), terminator: "")
    }
}
