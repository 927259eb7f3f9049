import CHandsetShim
import Foundation
import HandsetCore
import Testing
@testable import handset_fw

/// The SIM PIN keys (docs/firmware.md, "SIM PIN"), the PIN file's permission check, and the kept refusal of a wrong
/// PIN (Firmware+SIM.swift). The firmware against the simulator's PIN-protected SIM: test_firmware_sim_pin.py.
@Suite struct FirmwareSIMPINTests {
    static let base = "state_dir = /var/lib/handset\nserial = /dev/ttyAMA0\ngateway_number = +15550100000\n"

    func parse(_ text: String) -> Result<FirmwareConfig, ConfigError> {
        var spd = SPD<8>()
        var t = text
        var result: Result<FirmwareConfig, ConfigError> = .failure(ConfigError(line: -1, reason: "not run"))
        t.withUTF8 { b in
            do throws(ConfigError) { result = .success(try FirmwareConfig.parse(UnsafeRawBufferPointer(b), spd: &spd)) }
            catch { result = .failure(error) }
        }
        return result
    }

    func reason(_ text: String) -> String? {
        guard case .failure(let e) = parse(text) else { return nil }
        return "\(e.line): \(e.reason)"
    }

    func pin(_ c: FirmwareConfig) -> String { c.sim.pin.withBytes { String(decoding: $0, as: UTF8.self) } }

    @Test func pinIsFourToEightDigits() throws {
        #expect(pin(try parse(Self.base).get()) == "")
        #expect(pin(try parse(Self.base + "sim_pin = 1234\n").get()) == "1234")
        #expect(pin(try parse(Self.base + "sim_pin = 12345678\n").get()) == "12345678")
        for bad in ["123", "123456789", "12a4", "-123", "1234 5"] {
            #expect(reason(Self.base + "sim_pin = \(bad)\n") == "4: sim_pin: 4 to 8 digits", "\(bad)")
        }
    }

    @Test func pinFileIsAnAbsolutePathAndNotBesideAPIN() throws {
        let c = try parse(Self.base + "sim_pin_file = /etc/handset/sim.pin\n").get()
        #expect(c.sim.fromFile && pin(c) == "")
        #expect(reason(Self.base + "sim_pin_file = sim.pin\n") == "4: sim_pin_file: an absolute path")
        #expect(reason(Self.base + "sim_pin = 1234\nsim_pin_file = /x\n") == "5: sim_pin_file: not with sim_pin")
        #expect(reason(Self.base + "sim_pin_file = /x\nsim_pin = 1234\n") == "5: sim_pin: not with sim_pin_file")
    }

    func load(_ mode: Int, _ text: String) throws -> (Bool, String) {
        let dir = NSTemporaryDirectory() + "simpin-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sim.pin"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(chmod(path, mode_t(mode)) == 0)
        var c = try parse(Self.base + "sim_pin_file = \(path)\n").get()
        let ok = loadSIMPINFile(&c)
        return (ok, pin(c))
    }

    @Test func pinFileOfTheOwnerAloneIsRead() throws {
        #expect(try load(0o600, "4321\n") == (true, "4321"))
        #expect(try load(0o400, "87654321") == (true, "87654321"))
    }

    @Test func pinFileOthersMayReadOrWriteIsRefusedUnread() throws {
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o660] {
            #expect(try load(mode, "4321\n") == (false, ""), "mode \(String(mode, radix: 8))")
        }
    }

    @Test func pinFileMustHoldOnlyAPIN() throws {
        #expect(try load(0o600, "12\n") == (false, ""))
        #expect(try load(0o600, "pin = 1234\n") == (false, ""))
    }

    @Test func refusalMatchesOnlyThePINItWasMadeFor() throws {
        let dir = NSTemporaryDirectory() + "simpin-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let random = HandsetRandom()
        try dir.withCString { d in
            let wrong = Array("9999".utf8), right = Array("1234".utf8)
            #expect(!wrong.withUnsafeBytes { SIMPINRefusal.matches($0, stateDir: d) })  // nothing kept yet
            #expect(wrong.withUnsafeBytes { SIMPINRefusal.record($0, stateDir: d, random: random) } == 0)
            #expect(wrong.withUnsafeBytes { SIMPINRefusal.matches($0, stateDir: d) })
            #expect(!right.withUnsafeBytes { SIMPINRefusal.matches($0, stateDir: d) })  // a changed setting is tried
            let record = try Data(contentsOf: URL(fileURLWithPath: dir + "/sim-pin-refused"))
            #expect(record.count == SIMPINRefusal.length)
            #expect(record.range(of: Data("9999".utf8)) == nil)  // the PIN itself is not stored
            let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/sim-pin-refused")
            #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
            #expect(SIMPINRefusal.clear(stateDir: d) == 0)
            #expect(!wrong.withUnsafeBytes { SIMPINRefusal.matches($0, stateDir: d) })
            #expect(SIMPINRefusal.clear(stateDir: d) == 0)  // clearing nothing is no error
        }
    }

    @Test func octalModesReadAsLsPrintsThem() {
        func text(_ v: UInt32) -> String { LogLine("").append(octal: v).withBytes { String(decoding: $0, as: UTF8.self) } }
        #expect(text(0o644) == "644" && text(0o600) == "600" && text(0o4755) == "4755" && text(0) == "0")
    }
}
