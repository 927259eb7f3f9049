/// Splits the byte stream into lines in a fixed buffer, spots the data prompt, and resynchronises:
/// a control or non-ASCII byte (line noise, wrong baud rate) discards the partial line, and an
/// overlong line is dropped up to its terminator and counted, never truncated into a false match.
struct ATLineFramer {
    enum Event { case none, line, prompt }

    let buffer: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private var discarding = false
    private var dropSpace = false
    /// The prompt byte to recognise at the start of a line (`>` or u-blox `@`); 0 when none is expected.
    var promptByte: UInt8 = 0
    /// Whether the last line ended with CR (so a following LF is part of the terminator).
    private(set) var endedWithCR = false
    private(set) var overruns = 0
    private(set) var garbage = 0

    init(capacity: Int) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 8)
    }

    func deallocate() { buffer.deallocate() }

    var line: UnsafeRawBufferPointer { UnsafeRawBufferPointer(buffer).prefix(count) }

    mutating func clear() { count = 0 }

    mutating func push(_ b: UInt8) -> Event {
        if b == ASCII.cr || b == ASCII.lf {
            dropSpace = false
            endedWithCR = b == ASCII.cr
            if discarding {
                discarding = false
                count = 0
                return .none
            }
            return count == 0 ? .none : .line
        }
        if dropSpace {
            dropSpace = false
            if b == ASCII.space { return .none }
        }
        if (b < 0x20 && b != ASCII.tab) || b >= ASCII.del {
            // Ctrl-Z and ESC come back in the echo of an SMS body; anything else is noise.
            if b != ASCII.ctrlZ && b != ASCII.esc { garbage += 1 }
            count = 0
            return .none
        }
        if discarding { return .none }
        if count == 0 && promptByte != 0 && b == promptByte {
            dropSpace = true
            return .prompt
        }
        if count == buffer.count {
            overruns += 1
            discarding = true
            count = 0
            return .none
        }
        buffer[count] = b
        count += 1
        return .none
    }

    mutating func reset() {
        count = 0
        discarding = false
        dropSpace = false
        promptByte = 0
    }
}
