import Foundation
import HandsetCore
import Testing
@testable import handset_fw

/// A refused config line names its key, and the keys the unknown-key message lists are the ones docs/firmware.md
/// documents and the parser takes.
@Suite struct ConfigErrorTests {
    func failure(_ text: String) -> ConfigError? {
        if case .failure(let e) = parseConfig(text) { return e }
        return nil
    }

    func key(_ e: ConfigError) -> String { e.key.withBytes { String(decoding: $0, as: UTF8.self) } }

    @Test(arguments: [
        ("dialect = sim-com", "dialect", "dialect: auto, simcom, sim800(-single), quectel, ublox or generic", false),
        ("flow_control = rts", "flow_control", "flow_control: rtscts or none", false),
        ("app_socket = app.sock", "app_socket", "app_socket must be an absolute path", false),
        ("local_addres = 10.0.0.2", "local_addres", "unknown key", true),
        ("baud", "baud", "expected key = value", false),
        ("apn =", "apn", "missing value", false),
        ("a_key_longer_than_thirty_two_bytes_is_cut = 1", "a_key_longer_than_thirty_two_byt", "unknown key", true),
    ])
    func badLineNamesItsKey(_ line: String, _ expectedKey: String, _ reason: String, _ unknown: Bool) throws {
        let e = try #require(failure(minimalConfig + "# comment\n" + line + "\n"))
        #expect(e.line == 5)
        #expect(key(e) == expectedKey)
        #expect(String(describing: e.reason) == reason)
        #expect(e.unknownKey == unknown)
    }

    @Test func missingRequiredKeyIsTheFileNotALine() throws {
        let e = try #require(failure("serial = /dev/ttyAMA0\ngateway_number = +1\n"))
        #expect(e.line == 0 && key(e).isEmpty && String(describing: e.reason) == "state_dir is required")
    }

    /// The keys of docs/firmware.md's Configuration table: the list the firmware prints must be exactly those, and
    /// each must be a key the parser takes (a documented key it refused as unknown would be a bug either way).
    @Test func listedKeysAreTheDocumentedKeys() throws {
        let doc = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../docs/firmware.md"), encoding: .utf8)
        let table = try #require(doc.components(separatedBy: "## Configuration").dropFirst().first?
            .components(separatedBy: "\n## ").first)
        let documented = table.split(separator: "\n").compactMap { row -> String? in
            guard row.hasPrefix("| `") else { return nil }
            return row.dropFirst(3).split(separator: "`").first.map(String.init)
        }
        let listed = FirmwareConfig.keys.map { String(describing: $0) }
        #expect(documented.count > 20)
        #expect(Set(listed) == Set(documented))
        #expect(Set(listed).count == listed.count)
        for k in listed {
            if let e = failure(minimalConfig + "\(k) = x\n") { #expect(!e.unknownKey, "\(k) is listed but refused as unknown") }
        }
    }
}
