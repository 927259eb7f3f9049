// The engine's receive side: bytes → lines → response, URC queue or raw data.

extension ATEngine {
    /// Writes the command line (held in the echo buffer with its CR).
    func writeCommandLine() throws(ATError) {
        let n = echoCount
        try withUnsafeBytes(of: &echo) { (p) throws(ATError) in try write(UnsafeRawBufferPointer(rebasing: p[0..<n])) }
    }

    func begin(_ command: ATCommand) {
        command.withBytes { bytes in
            for i in 0..<bytes.count { echo[i] = bytes[i] }
            echo[bytes.count] = ASCII.cr
            echoCount = bytes.count + 1
            // "AT+CREG?" answers with "+CREG:"; remember that prefix so the answer is never taken for a URC.
            expectedCount = 0
            if bytes.count > 3 && (bytes[2] == ASCII.plus || bytes[2] == ASCII.dollar || bytes[2] == ASCII.caret) {
                var i = 2
                while i < bytes.count && bytes[i] != ASCII.equals && bytes[i] != ASCII.question && expectedCount < 23 {
                    expected[expectedCount] = ASCII.upper(bytes[i])
                    expectedCount += 1
                    i += 1
                }
                expected[expectedCount] = ASCII.colon
                expectedCount += 1
            }
        }
        response.reset()
        final = nil
        promptSeen = false
        sawInformation = false
        payloadEcho = nil
        pending = true
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(ATError) {
        do {
            try transport.write(bytes, timeoutMs: 2000)
        } catch {
            throw .transport(error)
        }
    }

    func write(byte: UInt8) throws(ATError) {
        var b = byte
        try withUnsafeBytes(of: &b) { (p) throws(ATError) in try write(p) }
    }

    /// Feeds input until `done` holds or the deadline passes; always tries one read first.
    func pump(until deadline: UInt64, _ done: (ATEngine) -> Bool) throws(ATError) -> Bool {
        var emptyReads = 0
        while true {
            while rxStart < rxEnd {
                let b = rx[rxStart]
                rxStart += 1
                consume(b)
                if done(self) { return true }
            }
            if done(self) { return true }
            let now = transport.nowMs()
            let wait = now >= deadline ? 0 : Int(deadline - now)
            let n: Int
            do {
                guard try transport.waitReadable(timeoutMs: wait) else {
                    if transport.nowMs() >= deadline { return false }
                    continue
                }
                n = try transport.read(into: rx)
            } catch {
                throw .transport(error)
            }
            rxStart = 0
            rxEnd = n
            if n == 0 {
                // Readable yet empty, again and again: the device hung up (USB modem unplugged).
                emptyReads += 1
                if emptyReads >= 3 { throw .transport(SerialError(kind: .hangUp, errno: 5)) }
                if transport.nowMs() >= deadline { return done(self) }
            } else {
                emptyReads = 0
            }
        }
    }

    /// One received byte.
    func consume(_ b: UInt8) {
        if rawRemaining > 0 {
            if rawSkipLF {
                rawSkipLF = false
                if b == ASCII.lf { return }
            }
            switch rawTarget {
            case .discard: break
            case .response: response.appendRaw(b)
            case .urc(let slot): urcs.appendBody(slot, byte: b)
            }
            rawRemaining -= 1
            if rawRemaining == 0 { finishRaw() }
            return
        }
        if b == ASCII.colon && framer.count > 0, let rule = rules.inlineBodyMatch(framer.line),
           case .inlineBytes(let field) = rule.body {
            // `+IPD,<len>:` ends here; the payload follows on the same line and may hold any byte.
            if case .slot(let waiting) = bodyWait {
                counters.missingBodies += 1
                urcs.finish(waiting)
            }
            bodyWait = .none
            counters.lines += 1
            counters.urcs += 1
            let slot = urcs.push(framer.line, complete: false)
            startRaw(framer.line, prefixLength: rule.prefix.utf8CodeUnitCount, field: field,
                     target: slot.map { .urc($0) } ?? .discard, afterCR: false)
            if rawRemaining == 0, let slot { urcs.finish(slot) }
            framer.clear()
            return
        }
        switch framer.push(b) {
        case .none: break
        case .prompt: if pending { promptSeen = true }
        case .line:
            handle(line: framer.line)
            framer.clear()
        }
    }

    private func finishRaw() {
        switch rawTarget {
        case .urc(let slot): urcs.finish(slot)
        case .response: response.closeRecord()
        case .discard: break
        }
        rawTarget = .discard
    }

    private func matchesExpected(_ line: UnsafeRawBufferPointer) -> Bool {
        if expectedCount == 0 || line.count < expectedCount { return false }
        for i in 0..<expectedCount where ASCII.upper(line[i]) != expected[i] { return false }
        return true
    }

    private func isHex(_ line: UnsafeRawBufferPointer) -> Bool {
        for b in line where hexValue(b) == nil { return false }
        return true
    }

    private func isEcho(_ line: UnsafeRawBufferPointer) -> Bool {
        if line.count != echoCount - 1 { return false }
        for i in 0..<line.count where ASCII.upper(line[i]) != ASCII.upper(echo[i]) { return false }
        return true
    }

    func handle(line: UnsafeRawBufferPointer) {
        counters.lines += 1
        if bodyWait != .none {
            // PDU-mode bodies are hex; anything else means the body was lost, and the line
            // (maybe the next command's OK) is handled on its own.
            let isBody = isHex(line)
            if case .slot(let slot) = bodyWait {
                if isBody { urcs.appendBody(slot, line) } else { counters.missingBodies += 1 }
                urcs.finish(slot)
            }
            bodyWait = .none
            if isBody { return }
        }
        if pending {
            if !sawInformation && isEcho(line) {
                counters.echoes += 1
                return
            }
            if let p = payloadEcho, line.equals(p) {
                counters.echoes += 1
                return
            }
            if let f = ATFinal.classify(line) ?? rules.finalMatch(line) {
                final = f
                return
            }
            if matchesExpected(line) {
                sawInformation = true
                response.append(line)
                if case .rawBytes(let field) = rules.responseBody(line) {
                    startRaw(line, prefixLength: expectedCount, field: field, target: .response)
                }
                return
            }
            if queueIfUnsolicited(line) { return }
            sawInformation = true
            response.append(line)
            if oneLineAnswer { final = .ok }  // AT+CIFSR: the address is the whole answer, no OK follows
            return
        }
        if ATFinal.classify(line) != nil {
            counters.strayLines += 1  // e.g. a late OK after a timeout
            return
        }
        if !queueIfUnsolicited(line) { counters.strayLines += 1 }
    }

    /// Queues `line` if it is a URC or a ready indication; returns false when it is neither.
    private func queueIfUnsolicited(_ line: UnsafeRawBufferPointer) -> Bool {
        let rule = rules.unsolicitedMatch(line)
        let ready = ATLineRules.isReadyIndication(line)
        if rule == nil && !ready { return false }
        counters.urcs += 1
        if ready {
            counters.reboots += 1
            rebootSeen = true
            if pending && final == nil { final = .failed(.rebooted) }
        }
        switch rule?.body ?? .none {
        case .none:
            _ = urcs.push(line, complete: true)
        case .nextLine:
            bodyWait = urcs.push(line, complete: false).map { .slot($0) } ?? .swallow
        case .rawBytes(let field):
            let slot = urcs.push(line, complete: false)
            startRaw(line, prefixLength: rule!.prefix.utf8CodeUnitCount, field: field,
                     target: slot.map { .urc($0) } ?? .discard)
            if rawRemaining == 0, let slot { urcs.finish(slot) }
        case .inlineBytes:
            counters.badRawLengths += 1  // the header ended without its colon: its length cannot be trusted
        }
        return true
    }

    private func startRaw(_ line: UnsafeRawBufferPointer, prefixLength: Int, field: Int, target: RawTarget,
                          afterCR: Bool? = nil) {
        var f = ATFields(line.suffix(from: prefixLength))
        f.skip(field)
        // SIM800 ends the length with a colon when no sender follows (`+RECEIVE,0,12:`).
        var text = f.next()
        if let t = text, t.count > 1, t[t.count - 1] == ASCII.colon { text = t.prefix(t.count - 1) }
        guard let t = text, let n = parseDecimal(t), n <= 65535 else {
            counters.badRawLengths += 1
            return
        }
        if n == 0 { return }
        rawRemaining = n
        rawTarget = target
        rawSkipLF = afterCR ?? framer.endedWithCR
        if case .response = target { response.openRawRecord() }
    }
}
