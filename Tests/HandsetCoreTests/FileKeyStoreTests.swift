import Foundation
import Testing
@testable import HandsetCore

/// The handset's key file is owner-only (issue 12 item 5), even when a crash left a world-readable temp file.
@Suite struct FileKeyStoreTests {
    func mode(_ path: String) throws -> mode_t {
        var st = stat()
        try #require(stat(path, &st) == 0, "\(path)")
        return st.st_mode & 0o777
    }

    @Test func stateFileIsOwnerOnlyEvenOverAStaleTempFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent("device.key.tmp").path
        #expect(FileManager.default.createFile(atPath: tmp, contents: Data("stale".utf8), attributes: [.posixPermissions: 0o644]))
        var store = try #require(dir.path.withCString { FileKeyStore(directory: $0) })
        let key = [UInt8](repeating: 0x42, count: 32)
        let k = key.withUnsafeBytes { KeyBytes($0) }
        try store.save(KeyState(deviceID: 9, key: k))
        #expect(try mode(dir.appendingPathComponent("device.key").path) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: tmp))
        #expect(try store.load().deviceID == 9)
    }
}
