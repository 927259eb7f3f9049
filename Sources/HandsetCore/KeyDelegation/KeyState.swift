import CHandsetShim

/// What the handset must never lose: identity, device keys and both message counters.
/// Stored as 106 bytes: "HSK1", fields big-endian, then the first 8 bytes of SHA-256 over the rest; with an inner
/// address the gateway bound, 110 bytes: "HSK2" and the address after the hello.
public struct KeyState: Equatable, Sendable {
    public var deviceID: UInt64 = 0
    public var epoch: UInt16 = 0
    public var currentKey = KeyBytes()
    /// Rotation in progress: the key the gateway offered, kept until the gateway confirms it (0 = none).
    public var pendingEpoch: UInt16 = 0
    public var pendingKey = KeyBytes()
    /// Last counter this handset sent; the next message uses upCounter + 1.
    public var upCounter: UInt64 = 0
    /// Last counter accepted from the gateway.
    public var downCounter: UInt64 = 0
    /// The hello of the login in flight.
    public var hello: UInt64 = 0
    /// The inner address the gateway bound to this device (an IKE server's virtual IP, sa-transfer flag bit 7);
    /// nil: the configured one. Kept here so it is replaced atomically with the counter of the message that set it.
    public var innerAddress: IPAddress?

    public init() {}
    public init(deviceID: UInt64, key: KeyBytes) { self.deviceID = deviceID; currentKey = key }

    public var hasPending: Bool { pendingEpoch != 0 }

    public static let encodedLength = 106
    public static let maxEncodedLength = 110
    static let magic: UInt32 = 0x4853_4B31  // "HSK1"
    static let magicWithAddress: UInt32 = 0x4853_4B32  // "HSK2"

    public func encode(into out: UnsafeMutableRawBufferPointer) -> Int {
        var w = WireWriter(out)
        w.u32(innerAddress == nil ? Self.magic : Self.magicWithAddress); w.u64(deviceID); w.u16(epoch)
        currentKey.withBytes { w.bytes($0) }
        w.u16(pendingEpoch)
        pendingKey.withBytes { w.bytes($0) }
        w.u40(upCounter); w.u40(downCounter); w.u64(hello)
        if let a = innerAddress { w.u32(a.v4) }
        let n = w.count
        guard w.ok, out.count >= n + 8 else { return 0 }
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digest) { d in
            _ = hs_sha256(out.baseAddress!.assumingMemoryBound(to: UInt8.self), n, d.baseAddress!.assumingMemoryBound(to: UInt8.self))
            out.baseAddress!.advanced(by: n).copyMemory(from: d.baseAddress!, byteCount: 8)
        }
        return n + 8
    }

    public static func decode(_ b: UnsafeRawBufferPointer) -> KeyState? {
        let length = b.count
        guard length == encodedLength || length == maxEncodedLength else { return nil }
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let intact = withUnsafeMutableBytes(of: &digest) { d -> Bool in
            _ = hs_sha256(b.baseAddress!.assumingMemoryBound(to: UInt8.self), length - 8,
                          d.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return hs_ct_equal(d.baseAddress!.assumingMemoryBound(to: UInt8.self),
                               b.baseAddress!.assumingMemoryBound(to: UInt8.self) + length - 8, 8) == 1
        }
        guard intact else { return nil }
        var r = WireReader(UnsafeRawBufferPointer(rebasing: b[0..<(length - 8)]))
        guard r.u32() == (length == encodedLength ? magic : magicWithAddress) else { return nil }
        var s = KeyState()
        s.deviceID = r.u64(); s.epoch = r.u16(); s.currentKey = KeyBytes(r.bytes(32))
        s.pendingEpoch = r.u16(); s.pendingKey = KeyBytes(r.bytes(32))
        s.upCounter = r.u40(); s.downCounter = r.u40(); s.hello = r.u64()
        if length == maxEncodedLength {
            let a = IPAddress(v4: r.u32())
            guard a.isUsableInnerAddress else { return nil }
            s.innerAddress = a
        }
        return r.ok && r.remaining == 0 ? s : nil
    }
}

public enum StoreError: Error, Equatable, Sendable {
    case missing
    case corrupt
    case io(Int32)
}

/// Where the handset keeps its KeyState. Saving must be atomic: after a crash, load() returns either the old
/// or the new state, whole.
public protocol KeyStateStore {
    mutating func load() throws(StoreError) -> KeyState
    mutating func save(_ state: KeyState) throws(StoreError)
}

/// KeyState in `<dir>/device.key`, replaced atomically (temp file, fsync, rename, fsync of the directory).
public struct FileKeyStore: KeyStateStore {
    private var dir: InlineArray<256, CChar>
    public static let fileName: StaticString = "device.key"

    /// `directory` is copied; paths of 200 bytes or more are refused.
    public init?(directory: UnsafePointer<CChar>) {
        dir = InlineArray(repeating: 0)
        var i = 0
        while directory[i] != 0 {
            guard i < 200 else { return nil }
            dir[i] = directory[i]
            i += 1
        }
    }

    public mutating func load() throws(StoreError) -> KeyState {
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var path = InlineArray<300, CChar>(repeating: 0)
        var n = 0
        while dir[n] != 0 { path[n] = dir[n]; n += 1 }
        path[n] = 0x2F  // '/'
        n += 1
        let name = Self.fileName
        for k in 0..<name.utf8CodeUnitCount { path[n + k] = CChar(bitPattern: name.utf8Start[k]) }
        let got: Int = withUnsafeMutableBytes(of: &buf) { b in
            withUnsafeBytes(of: &path) { p in
                Int(hs_file_read(p.baseAddress!.assumingMemoryBound(to: CChar.self), b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count))
            }
        }
        if got == -2 { throw .missing }  // ENOENT
        guard got >= 0 else { throw .io(Int32(-got)) }
        let state = withUnsafeBytes(of: &buf) { b in KeyState.decode(UnsafeRawBufferPointer(rebasing: b[0..<got])) }
        guard let s = state else { throw .corrupt }
        return s
    }

    public mutating func save(_ state: KeyState) throws(StoreError) {
        var buf: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let rc: Int32 = withUnsafeMutableBytes(of: &buf) { b in
            let n = state.encode(into: b)
            defer { hs_zeroize(b.baseAddress, b.count) }
            return withUnsafeBytes(of: &dir) { d in
                hs_file_replace_atomic(d.baseAddress!.assumingMemoryBound(to: CChar.self),
                                       UnsafeRawPointer(Self.fileName.utf8Start).assumingMemoryBound(to: CChar.self),
                                       b.baseAddress!.assumingMemoryBound(to: UInt8.self), n)
            }
        }
        guard rc == 0 else { throw .io(-rc) }
    }
}
