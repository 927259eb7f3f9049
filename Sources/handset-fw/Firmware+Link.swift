import BearerDriver
import CHandsetShim

// Modem errors and the serial link. Every modem error is counted and logged by kind (an AT error carries no
// payload, so no key material can reach the log). A tty that went away (USB modem unplugged, pty closed) makes
// every read fail at once: the port is closed and reopened with a back-off instead of spinning on it.
extension Firmware {
    static let reopenFirstMs: UInt32 = 1000
    static let reopenMaxMs: UInt32 = 30_000

    /// Counts one modem error and logs it, `fw: modem error (WHAT): KIND`, rate-limited per kind
    /// (ErrorLogLimiter.swift): ` (N like it left out)` after a minute of repeats.
    mutating func modemError(_ what: StaticString, _ e: ATError) {
        stats.modemErrors &+= 1
        guard let left = errorLog.admit(what, e, nowMs: hs_monotonic_ms()) else { return }
        let line = LogLine("fw: modem error (").append(what).append("): ").append(e)
        if left > 0 { line.append(" (").append(left).append(" like it left out)").emit() } else { line.emit() }
    }

    /// The device itself failed (hang-up, gone, bad descriptor), not a command: no AT exchange can succeed.
    static func linkLost(_ e: ATError) -> Bool {
        guard case .transport(let s) = e else { return false }
        return s.kind != .busy && s.kind != .unsupportedBaud
    }

    /// Handles a modem error from the main loop; true when the link was lost and has been reopened.
    mutating func afterModemError(_ what: StaticString, _ e: ATError) -> Bool {
        modemError(what, e)
        guard Self.linkLost(e) else { return false }
        return reopenSerialLink()
    }

    /// Closes the dead port and reopens `serial` after 1 s, doubling to 30 s. The app socket and TUN are still
    /// served meanwhile. Returns false only when asked to stop.
    mutating func reopenSerialLink() -> Bool {
        log("serial link lost; closing the port, reopening with back-off")
        abortJob(.transport(SerialError(kind: .hangUp, errno: 5)))
        driver.engine.transport.close()
        // A closed descriptor number may be handed to the next open(2): nothing may write to it meanwhile.
        driver.engine.transport = SerialPort(adopting: -1)
        var backoff = Self.reopenFirstMs
        while hs_stop_requested() == 0 {
            idle(ms: backoff)
            guard hs_stop_requested() == 0 else { return false }
            var path = config.serial
            let opened = withUnsafeBytes(of: &path) { p -> SerialPort? in
                do throws(SerialError) {
                    return try SerialPort(path: p.baseAddress!.assumingMemoryBound(to: CChar.self), baud: config.baud,
                                          rtscts: config.rtscts)
                } catch {
                    LogLine("fw: serial device not back: ").append(errno: error.errno).append("; next try in ")
                        .append(min(backoff * 2, Self.reopenMaxMs) / 1000).append(" s").emit()
                    return nil
                }
            }
            if let port = opened {
                driver.engine.transport = port
                log("serial link reopened")
                return true
            }
            backoff = min(backoff * 2, Self.reopenMaxMs)
        }
        return false
    }

    /// Sleeps `ms` in short slices, answering the app and TUN, and returning early on a stop signal.
    mutating func idle(ms: UInt32) {
        let end = hs_monotonic_ms() + UInt64(ms)
        while hs_stop_requested() == 0 {
            let now = hs_monotonic_ms()
            guard now < end else { return }
            hs_sleep_ms(UInt32(min(end - now, 50)))
            pollApp()
            pollTUN()
        }
    }
}

extension LogLine {
    /// An AT error by kind, with its number where it has one (`cms 321`, `transport hang-up errno 5`).
    func append(_ e: ATError) -> LogLine {
        switch e {
        case .error: return append("ERROR")
        case .cme(let n): return append("cme ").append(n)
        case .cms(let n): return append("cms ").append(n)
        case .noCarrier: return append("no carrier")
        case .busy: return append("busy")
        case .noAnswer: return append("no answer")
        case .noDialtone: return append("no dialtone")
        case .sendFailed: return append("send failed")
        case .timeout: return append("timeout")
        case .rebooted: return append("module rebooted")
        case .commandInvalid: return append("command invalid")
        case .responseOverflow: return append("response overflow")
        case .malformedResponse: return append("malformed response")
        case .unsupported: return append("unsupported")
        case .invalidArgument: return append("invalid argument")
        case .socketError(let n): return append("socket error ").append(n)
        case .noSuchSocket: return append("no such socket")
        case .transport(let s): return append("transport ").append(s.kind).append(": ").append(errno: s.errno)
        }
    }

    func append(_ k: SerialError.Kind) -> LogLine {
        switch k {
        case .unsupportedBaud: return append("unsupported-baud")
        case .noSuchDevice: return append("no-such-device")
        case .permissionDenied: return append("permission-denied")
        case .busy: return append("busy")
        case .hangUp: return append("hang-up")
        case .badDescriptor: return append("bad-descriptor")
        case .pathTooLong: return append("path-too-long")
        case .other: return append("other")
        }
    }
}
