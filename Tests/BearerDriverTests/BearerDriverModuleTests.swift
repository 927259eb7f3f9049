import Testing
import CHandsetShim

// Guards the shim's argv capture, which the firmware entry relies on instead of CommandLine.
@Test func shimCapturesArguments() {
    #expect(hs_argc() >= 1)
    #expect(hs_argv(0) != nil)
    #expect(hs_argv(hs_argc()) == nil)
}
