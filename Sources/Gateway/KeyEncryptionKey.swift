import CHandsetShim
import Foundation

/// The key-encryption key: 32 random bytes in a file of its own (0600), never in the registry. Device keys are
/// stored as AES-256-GCM under it, with a fresh random nonce per wrap and the device id as associated data,
/// so a copied database alone yields no key and a wrapped key moved to another row does not open.
public struct KeyEncryptionKey: Sendable {
    private let bytes: [UInt8]

    /// Which of a row's keys a blob holds (part of the associated data, so the two cannot be swapped).
    enum Slot: UInt8 { case current = 1, pending = 2, check = 3, ikePSK = 4, ikePrivateKey = 5 }

    static let version: UInt8 = 1
    static let overhead = 1 + 12 + 16

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Reads a KEK file: exactly 32 bytes, readable by its owner only.
    public static func load(path: String) throws(RegistryError) -> KeyEncryptionKey {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .kekFile(path: path, reason: String(cString: strerror(errno))) }
        guard st.st_mode & 0o077 == 0 else {
            throw .kekFile(path: path, reason: "group or others may read it (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
            throw .kekFile(path: path, reason: "must hold exactly 32 bytes")
        }
        return KeyEncryptionKey(bytes: Array(data))
    }

    /// Reads the KEK file, first creating it (32 random bytes, 0600) when it does not exist.
    public static func loadOrCreate(path: String) throws(RegistryError) -> KeyEncryptionKey {
        if access(path, F_OK) != 0 { try create(path) }
        return try load(path: path)
    }

    /// Temp file, fsync, then link(2): a KEK that appeared meanwhile is never replaced.
    private static func create(_ path: String) throws(RegistryError) {
        func fail(_ what: String) -> RegistryError { .kekFile(path: path, reason: "\(what): \(String(cString: strerror(errno)))") }
        let tmp = "\(path).\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fail("create") }
        var k = KeyMaterial.random(32)
        defer { hs_zeroize(&k, k.count) }
        let ok = k.withUnsafeBytes { hs_write_all(fd, $0.baseAddress, $0.count) } == 0 && fsync(fd) == 0
        let err = fail("write")
        close(fd)
        guard ok else { unlink(tmp); throw err }
        let linked = link(tmp, path) == 0 || errno == EEXIST
        let linkErr = fail("link")
        unlink(tmp)
        guard linked else { throw linkErr }
        let dir = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    /// version ‖ nonce ‖ ciphertext ‖ tag.
    func wrap(_ key: Data, deviceID: UInt64, slot: Slot) throws(RegistryError) -> Data {
        let nonce = KeyMaterial.random(12)
        var out = [UInt8](repeating: 0, count: Self.overhead + key.count)
        out[0] = Self.version
        out.replaceSubrange(1..<13, with: nonce)
        let aad = Self.aad(deviceID, slot)
        let rc = withContext { ctx in
            key.withUnsafeBytes { k in
                out.withUnsafeMutableBufferPointer { o in
                    hs_aead_seal(ctx, nonce, aad, aad.count, k.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                 o.baseAddress! + 13, key.count, o.baseAddress! + 13 + key.count, 16)
                }
            }
        }
        guard rc == HS_OK else { throw .keyWrapFailed(device: deviceID) }
        return Data(out)
    }

    func unwrap(_ blob: Data, deviceID: UInt64, slot: Slot) throws(RegistryError) -> Data {
        let b = [UInt8](blob)
        guard b.count > Self.overhead, b[0] == Self.version else { throw .keyUnwrapFailed(device: deviceID) }
        let n = b.count - Self.overhead
        var plain = [UInt8](repeating: 0, count: n)
        defer { hs_zeroize(&plain, plain.count) }
        let aad = Self.aad(deviceID, slot)
        let rc = withContext { ctx in
            b.withUnsafeBufferPointer { s in
                plain.withUnsafeMutableBufferPointer { p in
                    hs_aead_open(ctx, s.baseAddress! + 1, aad, aad.count, s.baseAddress! + 13, p.baseAddress!, n,
                                 s.baseAddress! + 13 + n, 16)
                }
            }
        }
        guard rc == HS_OK else { throw .keyUnwrapFailed(device: deviceID) }
        return Data(plain)
    }

    private static func aad(_ deviceID: UInt64, _ slot: Slot) -> [UInt8] {
        Array("handset-registry-kek-v1".utf8) + (0..<8).map { UInt8(truncatingIfNeeded: deviceID >> (56 - 8 * $0)) } + [slot.rawValue]
    }

    /// An AES-256-GCM context keyed with the KEK for one call, wiped afterwards.
    private func withContext(_ body: (UnsafeMutableRawPointer) -> Int32) -> Int32 {
        let ctx = UnsafeMutableRawPointer.allocate(byteCount: hs_aead_ctx_size(), alignment: max(16, hs_aead_ctx_align()))
        ctx.initializeMemory(as: UInt8.self, repeating: 0, count: hs_aead_ctx_size())
        defer { hs_aead_wipe(ctx); ctx.deallocate() }
        let rc = hs_aead_setkey(ctx, Int32(HS_AEAD_AES_GCM), bytes, bytes.count)
        guard rc == HS_OK else { return rc }
        return body(ctx)
    }
}
