// A command in flight without blocking: `start` writes it, `poll` (or the driver's `nextEvent`) reads its
// answer while URCs keep being queued and handed out, and `advance` writes the payload at the prompt and
// returns the response once the final result came. One command at a time; `run` is start + advance.

extension ATEngine {
    /// True from `start` until `advance` returned the response or threw.
    public var commandInFlight: Bool { pending }

    /// The command in flight has something for `advance` to do: its prompt, its final result, or its deadline.
    public var commandReady: Bool {
        commandAnswered || (pending && transport.nowMs() >= commandDeadline)
    }

    /// Prompted or finished: checked per byte, so without reading the clock.
    var commandAnswered: Bool { pending && (final != nil || (payloadDue != nil && promptSeen)) }

    /// Writes `command` and returns at once; the payload (copied here, so the caller's buffer may go) is
    /// written at the prompt by `advance`. Throws `.commandInvalid` while another command is in flight.
    public func start(_ command: ATCommand, timeoutMs: Int? = nil, payload: ATPayload? = nil) throws(ATError) {
        if command.invalid || command.count == 0 || pending { throw .commandInvalid }
        if let p = payload, p.bytes.count > payloadStore.count { throw .invalidArgument }
        // Whatever arrived before the command is unsolicited; process it first.
        _ = try pump(until: transport.nowMs()) { _ in false }
        begin(command)
        if let p = payload {
            if p.bytes.count > 0 { payloadStore.baseAddress!.copyMemory(from: p.bytes.baseAddress!, byteCount: p.bytes.count) }
            payloadDue = ATPayload(bytes: UnsafeRawBufferPointer(rebasing: payloadStore[0..<p.bytes.count]), prompt: p.prompt,
                                   terminator: p.hasTerminator ? p.terminator : nil, delayMs: p.delayMs)
        }
        framer.promptByte = payload?.prompt ?? 0
        commandDeadline = transport.nowMs() + UInt64(max(timeoutMs ?? defaultTimeoutMs, 0))
        do throws(ATError) {
            try writeCommandLine()
        } catch {
            endCommand()
            throw error
        }
    }

    /// Moves the command in flight on with what has been read: writes its payload once prompted, and
    /// returns its response once the final result came (nil while it runs). Throws the final result's
    /// error, `.timeout` at the deadline or `.rebooted`; the command is over after any throw.
    public func advance() throws(ATError) -> ATResponse? {
        guard pending else { throw .commandInvalid }
        if let p = payloadDue {
            if final != nil {
                payloadDue = nil  // refused before the prompt
            } else if promptSeen {
                payloadDue = nil
                framer.promptByte = 0
                do throws(ATError) {
                    transport.pause(ms: p.delayMs)
                    try write(p.bytes)
                    if p.hasTerminator { try write(byte: p.terminator) }
                } catch {
                    endCommand()
                    throw error
                }
                payloadEcho = p.bytes
            } else if transport.nowMs() >= commandDeadline {
                endCommand()
                try write(byte: ASCII.esc)  // leave the module's input mode
                counters.timeouts += 1
                throw .timeout
            } else {
                return nil
            }
        }
        if let result = final {
            endCommand()
            switch result {
            case .ok:
                if response.overflowed { throw .responseOverflow }
                return response.view
            case .failed(let e):
                throw e
            }
        }
        if transport.nowMs() >= commandDeadline {
            endCommand()
            counters.timeouts += 1
            throw .timeout
        }
        return nil
    }

    /// Runs a command whose whole answer is one information line with no final result after it (SIM800
    /// `AT+CIFSR` answers the bare address, SIM800 Series AT Command Manual V1.09 §8.2.11).
    @discardableResult
    public func runAnsweredByOneLine(_ command: ATCommand, timeoutMs: Int? = nil) throws(ATError) -> ATResponse {
        try start(command, timeoutMs: timeoutMs)
        oneLineAnswer = true
        return try finishCommand()
    }

    /// Forgets the command in flight (its link was lost); a late answer is counted as stray.
    public func abandonCommand() { endCommand() }

    func endCommand() {
        pending = false
        oneLineAnswer = false
        payloadEcho = nil
        payloadDue = nil
        framer.promptByte = 0
    }
}
