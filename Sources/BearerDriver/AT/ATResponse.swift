/// The information lines of one command, stored back to back as [length:2][bytes] records in the
/// engine's response buffer. A view: valid until the next engine call.
public struct ATResponse {
    let storage: UnsafeRawBufferPointer

    init(storage: UnsafeRawBufferPointer) { self.storage = storage }

    /// Number of lines (raw data blocks count as one line each).
    public var count: Int {
        var n = 0
        var o = 0
        while o + 2 <= storage.count {
            o += 2 + recordLength(at: o)
            n += 1
        }
        return n
    }

    /// Little-endian length of the record at `o`; parenthesised because `|` binds like `+`.
    private func recordLength(at o: Int) -> Int {
        Int(storage[o]) | (Int(storage[o + 1]) << 8)
    }

    public func line(_ index: Int) -> UnsafeRawBufferPointer? {
        var o = 0
        var n = 0
        while o + 2 <= storage.count {
            let len = recordLength(at: o)
            if n == index { return UnsafeRawBufferPointer(rebasing: storage[(o + 2)..<(o + 2 + len)]) }
            o += 2 + len
            n += 1
        }
        return nil
    }

    /// Index of the first line starting with `prefix`, searching from `from`.
    public func index(of prefix: StaticString, from: Int = 0) -> Int? {
        var i = from
        while let l = line(i) {
            if l.hasPrefix(prefix) { return i }
            i += 1
        }
        return nil
    }

    /// Fields of the first line starting with `prefix`.
    public func fields(_ prefix: StaticString) -> ATFields? {
        guard let i = index(of: prefix), let l = line(i) else { return nil }
        return ATFields(l, after: prefix)
    }

    /// The first line not starting with `+` (ATI, AT+CGMM, AT+CGSN answers).
    public var firstPlainLine: UnsafeRawBufferPointer? {
        var i = 0
        while let l = line(i) {
            if l.count > 0 && l[0] != ASCII.plus { return l }
            i += 1
        }
        return nil
    }
}

/// Response lines written into a buffer allocated at init; overflow is counted and reported once.
struct ATResponseBuffer {
    let storage: UnsafeMutableRawBufferPointer
    private(set) var used = 0
    private(set) var overflowed = false
    private var openRecord = -1

    init(capacity: Int) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 8)
    }

    func deallocate() { storage.deallocate() }

    mutating func reset() {
        used = 0
        overflowed = false
        openRecord = -1
    }

    mutating func append(_ line: UnsafeRawBufferPointer) {
        closeRecord()
        if used + 2 + line.count > storage.count || line.count > 0xFFFF {
            overflowed = true
            return
        }
        storage[used] = UInt8(truncatingIfNeeded: line.count)
        storage[used + 1] = UInt8(truncatingIfNeeded: line.count >> 8)
        if line.count > 0 { (storage.baseAddress! + used + 2).copyMemory(from: line.baseAddress!, byteCount: line.count) }
        used += 2 + line.count
    }

    /// Opens a record that raw bytes are appended to one at a time.
    mutating func openRawRecord() {
        closeRecord()
        if used + 2 > storage.count { overflowed = true; return }
        openRecord = used
        storage[used] = 0
        storage[used + 1] = 0
        used += 2
    }

    mutating func appendRaw(_ b: UInt8) {
        guard openRecord >= 0 else { return }
        if used >= storage.count || used - openRecord - 2 >= 0xFFFF { overflowed = true; return }
        storage[used] = b
        used += 1
        let len = used - openRecord - 2
        storage[openRecord] = UInt8(truncatingIfNeeded: len)
        storage[openRecord + 1] = UInt8(truncatingIfNeeded: len >> 8)
    }

    mutating func closeRecord() { openRecord = -1 }

    var view: ATResponse { ATResponse(storage: UnsafeRawBufferPointer(storage).prefix(used)) }
}
