import BearerDriver
import Foundation
import HandsetCore
import Testing
@testable import handset_fw

/// COUNTERS at its longest (Firmware+Status.swift): every counter at 20 digits, the longest `sim` line and the SA
/// table full still fit `StatusText.capacity`, whole. The text of a running firmware: test_firmware_status.py.
@Suite struct StatusTextTests {
    static func lines(_ t: StatusText) -> [String] {
        t.withBytes { String(decoding: $0, as: UTF8.self) }.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A firmware with a provisioned key in a temporary state_dir, the serial port unopened.
    static func withFirmware(_ body: (borrowing Firmware) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "status-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = try #require(dir.withCString { FileKeyStore(directory: $0) })
        let key = [UInt8](repeating: 0x42, count: 32).withUnsafeBytes { KeyBytes($0) }
        try store.save(KeyState(deviceID: 7, key: key))
        let kd = try KeyDelegationClient(store: store)
        var plane = HandsetDataPlane()
        var text = "state_dir = \(dir)\nserial = /dev/null\ngateway_number = +15550100000\n"
        let config = try text.withUTF8 { b throws(ConfigError) in
            try FirmwareConfig.parse(UnsafeRawBufferPointer(b), spd: &plane.spd)
        }
        let fw = Firmware(config: config, plane: plane, kd: kd, driver: ATDriver(transport: SerialPort(adopting: -1)))
        try body(fw)
    }

    @Test func longestAnswerFitsWhole() throws {
        try Self.withFirmware { fw in
            let now = fw.statusText()
            let worst = fw.statusText(worstCase: true)
            #expect(!now.truncated && !worst.truncated)
            let names = Self.lines(now).dropLast(2).map { String($0.split(separator: " ")[0]) }  // before sim, ""
            #expect(names.count > 70 && names.first == "esp-out" && names.last == "sas")
            let all = Self.lines(worst)
            #expect(all.last == "")  // ends with a whole line
            let counters = all.prefix(names.count)
            #expect(counters.map { String($0.split(separator: " ")[0]) } == names)  // every counter, in order
            #expect(counters.allSatisfy { $0.hasSuffix(" 18446744073709551615") })
            #expect(all[names.count] == "sim last-try-kept tries-left 9223372036854775807")
            let max = "18446744073709551615"
            let sa = "sa 4294967295 out packets \(max) bytes \(max) replays \(max) icv-failures \(max)"
            #expect(Array(all[(names.count + 1)...].dropLast()) == Array(repeating: sa, count: Firmware.saSlots))
            #expect(worst.count <= StatusText.capacity)
            #expect(worst.count == 7253, "the worst case docs/firmware.md and StatusText state")
        }
    }
}
