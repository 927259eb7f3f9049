import Foundation
import Gateway
import Testing
@testable import HandsetCore
@testable import handset_emu

/// Issue 12 item 5: what the emulator and provisioning write is owner-only.
@Suite struct EmulatorFilesTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("emu-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func mode(_ path: String) throws -> mode_t {
        var st = stat()
        try #require(stat(path, &st) == 0, "\(path)")
        return st.st_mode & 0o777
    }

    /// The keylog holds SA keys; a file left world-readable by an earlier run becomes owner-only too.
    @Test func keylogAndPcapAreOwnerOnly() throws {
        let dir = try tempDir()
        let pcap = dir.appendingPathComponent("esp.pcap").path, keylog = dir.appendingPathComponent("esp_sa").path
        #expect(FileManager.default.createFile(atPath: keylog, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
        let c = try Capture(pcap: pcap, keylog: keylog)
        c.sa(spi: 0x5000_0000, fromHandset: true, key: [UInt8](repeating: 1, count: 32), salt: 7)
        c.close()
        #expect(try mode(pcap) == 0o600)
        #expect(try mode(keylog) == 0o600)
        #expect(try String(contentsOfFile: keylog, encoding: .utf8).hasPrefix("\"IPv4\""))  // truncated, then written
    }

    @Test func provisioningWritesOwnerOnlyStateAndTheDevicesOwnAddressIntoTheConfig() throws {
        let dir = try tempDir()
        let reg = dir.appendingPathComponent("r.sqlite").path, kek = dir.appendingPathComponent("r.kek").path
        let conf = dir.appendingPathComponent("handset.conf").path
        try "serial = /dev/ttyUSB0\nlocal_address = 10.0.0.2\napn = internet\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let a = try Provisioning.create(registry: reg, kek: kek, stateDir: dir.appendingPathComponent("a").path, msisdn: "+1", deviceID: 1)
        let b = try Provisioning.create(registry: reg, kek: kek, stateDir: dir.appendingPathComponent("b").path, msisdn: "+2", deviceID: 2)
        #expect(a.innerAddress == IPAddress(10, 77, 0, 1) && b.innerAddress == IPAddress(10, 77, 0, 2))
        try Provisioning.setLocalAddress(try #require(b.innerAddress).dottedQuad, inConfig: conf)
        #expect(try String(contentsOfFile: conf, encoding: .utf8) == "serial = /dev/ttyUSB0\nlocal_address = 10.77.0.2\napn = internet\n")
        #expect(try mode(dir.appendingPathComponent("a/device.key").path) == 0o600)
        #expect(try mode(reg) == 0o600 && mode(kek) == 0o600)
        // A taken address is refused before any state file is written.
        let c = dir.appendingPathComponent("c")
        #expect(throws: (any Error).self) {
            try Provisioning.create(registry: reg, kek: kek, stateDir: c.path, msisdn: "+3", deviceID: 3, innerAddress: IPAddress(10, 77, 0, 1))
        }
        #expect(!FileManager.default.fileExists(atPath: c.appendingPathComponent("device.key").path))
    }

    /// Issue 15: provisioning creates the device's IKE PSK (0600, random, reused when the file exists) and stores it
    /// with the identity in the registry, wrapped.
    @Test func provisioningCreatesTheIKECredentials() throws {
        let dir = try tempDir()
        let reg = dir.appendingPathComponent("r.sqlite").path, kek = dir.appendingPathComponent("r.kek").path
        let pskFile = dir.appendingPathComponent("a/ike.psk").path  // its folder made too
        let psk = try Provisioning.preSharedKey(file: pskFile)
        #expect(try psk.count == 64 && mode(pskFile) == 0o600)
        #expect(try Provisioning.preSharedKey(file: pskFile) == psk)  // read back, newline dropped
        let d = try Provisioning.create(registry: reg, kek: kek, stateDir: dir.appendingPathComponent("a").path, msisdn: "+1",
                                        deviceID: 0xA1, ike: ("a1@example.org", psk))
        let stored = try #require(try DeviceRegistry(path: reg, kek: try KeyEncryptionKey.load(path: kek)).device(id: d.deviceID))
        #expect(stored.ikeIdentity == "a1@example.org" && stored.ikePSK == psk)
        #expect(try Data(contentsOf: URL(fileURLWithPath: reg)).range(of: psk) == nil)
    }
}
