/// Counters for everything the engine absorbed instead of crashing on.
public struct ATStats: Equatable, Sendable {
    public var lines = 0
    public var urcs = 0
    /// URCs that found the queue full (the owner should resynchronise).
    public var urcOverflows = 0
    /// URC bodies or headers cut to the slot size.
    public var urcTruncations = 0
    /// Lines longer than the line buffer, dropped whole.
    public var lineOverruns = 0
    /// Control or non-ASCII bytes that reset a partial line.
    public var garbageBytes = 0
    /// Unsolicited lines matching no rule, and final results nobody waited for.
    public var strayLines = 0
    public var timeouts = 0
    public var reboots = 0
    public var echoes = 0
    /// Two-line URCs (`+CMT`) whose second line never came; handed out with an empty body.
    public var missingBodies = 0
    /// Raw data lengths that were out of range and ignored.
    public var badRawLengths = 0
}

/// Data written after the command's prompt: an SMS PDU as hex text ending in Ctrl-Z, or a
/// length-prefixed binary socket payload (never sent as command text).
public struct ATPayload {
    public let bytes: UnsafeRawBufferPointer
    public let prompt: UInt8
    public let terminator: UInt8
    public let hasTerminator: Bool
    public let delayMs: Int

    public init(bytes: UnsafeRawBufferPointer, prompt: UInt8 = 0x3E, terminator: UInt8? = nil, delayMs: Int = 0) {
        self.bytes = bytes
        self.prompt = prompt
        self.terminator = terminator ?? 0
        self.hasTerminator = terminator != nil
        self.delayMs = delayMs
    }

    /// TS 27.005 §3.5.1: PDU as hex after `> `, then Ctrl-Z.
    public static func smsPDU(hex: UnsafeRawBufferPointer) -> ATPayload {
        ATPayload(bytes: hex, prompt: ASCII.greater, terminator: ASCII.ctrlZ)
    }
}

/// One AT command at a time over a byte transport, with URCs recognised and queued whenever they
/// arrive — also between a command's answer and its final result. Every buffer is allocated once,
/// at init; the per-line path copies into those buffers and never touches the heap.
/// Views handed out (`ATResponse`, `ATURC`) are valid until the next call on the engine.
public final class ATEngine<Transport: ByteTransport> {
    public var transport: Transport
    /// Always-armed URC and raw-data rules; the driver loads its dialect's table here.
    public var rules: ATLineRules
    public var defaultTimeoutMs = 5000

    var framer: ATLineFramer
    var urcs: ATURCQueue
    var response: ATResponseBuffer
    let rx: UnsafeMutableRawBufferPointer
    var rxStart = 0
    var rxEnd = 0
    var counters = ATStats()

    // The command in flight.
    var pending = false
    var sawInformation = false
    var final: ATFinal?
    var promptSeen = false
    var echo = InlineArray<200, UInt8>(repeating: 0)
    var echoCount = 0
    var expected = InlineArray<24, UInt8>(repeating: 0)
    var expectedCount = 0
    var payloadEcho: UnsafeRawBufferPointer?
    /// The payload still to write at the prompt, copied into `payloadStore` by `start`.
    var payloadDue: ATPayload?
    let payloadStore: UnsafeMutableRawBufferPointer
    var commandDeadline: UInt64 = 0

    // Multi-part lines.
    enum RawTarget { case discard, response, urc(Int) }
    var rawRemaining = 0
    var rawTarget = RawTarget.discard
    var rawSkipLF = false
    /// Where the body line of a two-line URC (`+CMT`) goes.
    enum BodyWait: Equatable {
        case none
        /// Into this URC slot.
        case slot(Int)
        /// Nowhere: its URC found the queue full, and the line is swallowed, not taken for a URC of its own.
        case swallow
    }
    var bodyWait = BodyWait.none
    var rebootSeen = false
    /// The command in flight is answered by one line and no final result (`runAnsweredByOneLine`).
    var oneLineAnswer = false

    public init(transport: Transport, lineCapacity: Int = 600, responseCapacity: Int = 4096,
                urcSlots: Int = 8, urcSlotCapacity: Int = 1600, payloadCapacity: Int = 1600,
                rules: ATLineRules = ATLineRules()) {
        self.transport = transport
        self.rules = rules
        framer = ATLineFramer(capacity: max(lineCapacity, 16))
        urcs = ATURCQueue(slots: max(urcSlots, 1), slotCapacity: max(urcSlotCapacity, 64))
        response = ATResponseBuffer(capacity: max(responseCapacity, 64))
        rx = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        payloadStore = UnsafeMutableRawBufferPointer.allocate(byteCount: max(payloadCapacity, 1), alignment: 8)
    }

    deinit {
        framer.deallocate()
        urcs.deallocate()
        response.deallocate()
        rx.deallocate()
        payloadStore.deallocate()
    }

    public var stats: ATStats {
        var s = counters
        s.lineOverruns = framer.overruns
        s.garbageBytes = framer.garbage
        s.urcOverflows = urcs.overflows
        s.urcTruncations = urcs.truncations
        return s
    }

    /// Complete URCs waiting to be taken.
    public var pendingURCs: Int { urcs.pending }

    /// True once after the module announced a (re)start; the owner should re-initialise it.
    public func takeRebootIndication() -> Bool {
        defer { rebootSeen = false }
        return rebootSeen
    }

    /// The oldest queued URC, in arrival order.
    public func nextURC() -> ATURC? {
        guard let s = urcs.pop() else { return nil }
        return ATURC(line: urcs.line(s), body: urcs.body(s))
    }

    /// Forgets buffered input, queued URCs and any half-read line (after a reboot or a baud change).
    public func resynchronise() {
        rxStart = 0
        rxEnd = 0
        framer.reset()
        urcs.removeAll()
        rawRemaining = 0
        bodyWait = .none
        endCommand()
    }

    /// Reads and dispatches input for up to `timeoutMs`, returning early once a URC is queued (input after
    /// it waits for the next call), or once the command in flight needs `advance`.
    public func poll(timeoutMs: Int) throws(ATError) {
        let deadline = transport.nowMs() + UInt64(max(timeoutMs, 0))
        _ = try pump(until: deadline) { e in
            // Back-pressure: stop at the first whole URC and leave the rest of the input unread, so a burst
            // fills the queue only as fast as the owner takes it out (nextEvent). Bytes read stay in `rx`.
            (e.urcs.pending > 0 && e.rawRemaining == 0 && e.bodyWait == .none) || e.commandAnswered
        }
    }

    /// Reads and dispatches everything that arrives for `timeoutMs` (URCs are queued; past the queue's room
    /// they are counted as overflows), to clear the line of a half-finished exchange.
    func drain(timeoutMs: Int) throws(ATError) {
        _ = try pump(until: transport.nowMs() + UInt64(max(timeoutMs, 0))) { _ in false }
    }

    /// Waits for a URC starting with `prefix` (such as `+CIPOPEN:` after its OK); other URCs stay queued.
    public func awaitURC(_ prefix: StaticString, timeoutMs: Int) throws(ATError) -> ATURC {
        if let s = urcs.take(prefix: prefix) { return ATURC(line: urcs.line(s), body: urcs.body(s)) }
        let deadline = transport.nowMs() + UInt64(max(timeoutMs, 0))
        var found = -1
        _ = try pump(until: deadline) { engine in
            if let s = engine.urcs.take(prefix: prefix) { found = s }
            return found >= 0
        }
        if found < 0 {
            counters.timeouts += 1
            throw .timeout
        }
        return ATURC(line: urcs.line(found), body: urcs.body(found))
    }

    /// Waits for a URC that `rule` (or `other`) matches (SIM800 `0, CONNECT OK` or `0, ALREADY CONNECT` after its
    /// OK); other URCs stay queued.
    public func awaitURC(_ rule: ATLineRule, or other: ATLineRule? = nil, timeoutMs: Int) throws(ATError) -> ATURC {
        if let s = urcs.take(matching: rule) ?? other.flatMap({ urcs.take(matching: $0) }) {
            return ATURC(line: urcs.line(s), body: urcs.body(s))
        }
        let deadline = transport.nowMs() + UInt64(max(timeoutMs, 0))
        var found = -1
        _ = try pump(until: deadline) { engine in
            if let s = engine.urcs.take(matching: rule) ?? other.flatMap({ engine.urcs.take(matching: $0) }) { found = s }
            return found >= 0
        }
        if found < 0 {
            counters.timeouts += 1
            throw .timeout
        }
        return ATURC(line: urcs.line(found), body: urcs.body(found))
    }

    /// Runs a fixed command such as `AT+CSQ`.
    @discardableResult
    public func run(_ text: StaticString, timeoutMs: Int? = nil) throws(ATError) -> ATResponse {
        try run(ATCommand(text), timeoutMs: timeoutMs)
    }

    /// Sends `command`, optionally `payload` after its prompt, and collects information lines until
    /// the final result code or the deadline. Throws the final result's error, `.timeout` or `.rebooted`.
    /// The blocking form of `start` + `advance` (ATEngine+Command.swift).
    @discardableResult
    public func run(_ command: ATCommand, timeoutMs: Int? = nil, payload: ATPayload? = nil) throws(ATError) -> ATResponse {
        try start(command, timeoutMs: timeoutMs, payload: payload)
        return try finishCommand()
    }

    /// Waits for the command in flight (URCs arriving meanwhile stay queued) and returns its response.
    @discardableResult
    public func finishCommand() throws(ATError) -> ATResponse {
        while true {
            if let r = try advance() { return r }
            do throws(ATError) {
                _ = try pump(until: commandDeadline) { $0.commandAnswered }
            } catch {
                endCommand()
                throw error
            }
        }
    }
}
