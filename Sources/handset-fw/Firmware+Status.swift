import BearerDriver
import CHandsetShim
import HandsetCore

/// COUNTERS on the app interface: 0x05 asks, 0x86 answers with text, one `name value` line per counter of the
/// firmware, the driver, the data plane and key delegation, then `sim STATE tries-left N|unknown` (Firmware+SIM.swift)
/// and one line per installed SA:
/// `sa SPI in|out packets N bytes N replays N icv-failures N`. No key material. The answer goes to the socket
/// that asked and does not make it the app (`handset-fw status CONFIG` prints it; docs/firmware.md).
extension AppOp {
    static let counters: UInt8 = 0x05, countersIn: UInt8 = 0x86
}

/// Text in fixed storage, built line by line from LogLines.
struct StatusText {
    /// The longest answer fits: every counter at 20 digits (UInt64.max), the longest `sim` line and 32 SA lines of
    /// 137 B come to 7,253 B (`Firmware.statusText(worstCase: true)`; StatusTextTests checks it fits).
    static let capacity = 8192
    private var bytes = InlineArray<8192, UInt8>(repeating: 0)
    private(set) var count = 0
    /// A line did not fit (never, while `capacity` covers the worst case).
    private(set) var truncated = false
    /// Every value is written at its longest, to measure the worst case.
    let worstCase: Bool

    init(worstCase: Bool = false) { self.worstCase = worstCase }

    mutating func line(_ l: LogLine) {
        l.withBytes { b in
            guard count + b.count + 1 <= Self.capacity else { truncated = true; return }
            for c in b { bytes[count] = c; count += 1 }
            bytes[count] = 0x0A
            count += 1
        }
    }

    mutating func counter(_ name: StaticString, _ v: UInt64) {
        line(LogLine(name).append(" ").append(worstCase ? UInt64.max : v))
    }

    mutating func counter(_ name: StaticString, _ v: Int) { counter(name, UInt64(truncatingIfNeeded: v)) }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: bytes) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }
}

extension Firmware {
    func reportCounters() {
        let t = statusText()
        var out = InlineArray<8193, UInt8>(repeating: 0)  // the op byte and StatusText.capacity
        let n = withUnsafeMutableBytes(of: &out) { o -> Int in
            o[0] = AppOp.countersIn
            return t.withBytes { b in
                (o.baseAddress! + 1).copyMemory(from: b.baseAddress!, byteCount: b.count)
                return b.count + 1
            }
        }
        withUnsafeBytes(of: &out) { appSocket.answerAsker(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// The COUNTERS text; with `worstCase`, every value at its longest and every SA slot filled.
    func statusText(worstCase: Bool = false) -> StatusText {
        var t = StatusText(worstCase: worstCase)
        t.counter("esp-out", stats.espOut)
        t.counter("esp-in", stats.espIn)
        t.counter("esp-dropped", stats.espDropped)
        t.counter("sms-out", stats.smsOut)
        t.counter("sms-in", stats.smsIn)
        t.counter("sms-foreign", stats.smsForeign)
        t.counter("modem-errors", stats.modemErrors)
        t.counter("modem-error-lines-left-out", errorLog.linesLeftOut)
        t.counter("module-reboots", stats.moduleReboots)
        t.counter("sms-delete-queue-overflows", deletes.overflows)
        t.counter("sms-read-queue-overflows", storedToRead.overflows)
        t.counter("app-refused", appSocket.refused)
        t.counter("app-unknown", appSocket.unknown)
        let r = reassembler.counters
        t.counter("sms-parts-stored", r.stored)
        t.counter("sms-messages-completed", r.completed)
        t.counter("sms-parts-duplicate", r.duplicates)
        t.counter("sms-messages-timed-out", r.timedOut)
        t.counter("sms-messages-evicted", r.evicted)
        t.counter("sms-parts-rejected", r.rejected)
        t.counter("tun-packets-in", tun.stats.packetsIn)
        t.counter("tun-packets-out", tun.stats.packetsOut)
        t.counter("tun-not-udp", tun.stats.notUDP)
        t.counter("tun-malformed", tun.stats.malformed)
        t.counter("tun-foreign-source", tun.stats.foreignSource)
        t.counter("tun-too-long-to-hold", tun.stats.tooLongToHold)
        t.counter("tun-write-errors", tun.stats.writeErrors)
        t.counter("power-pulses", power.pulses)
        t.counter("power-errors", power.errors)
        t.counter("sim-pins-entered", sim.pinsEntered)
        t.counter("sim-pins-withheld", sim.pinsWithheld)
        let a = driver.engine.stats
        t.counter("at-lines", a.lines)
        t.counter("at-urcs", a.urcs)
        t.counter("at-urc-overflows", a.urcOverflows)
        t.counter("at-urc-truncations", a.urcTruncations)
        t.counter("at-line-overruns", a.lineOverruns)
        t.counter("at-garbage-bytes", a.garbageBytes)
        t.counter("at-stray-lines", a.strayLines)
        t.counter("at-timeouts", a.timeouts)
        t.counter("at-reboots", a.reboots)
        t.counter("at-echoes", a.echoes)
        t.counter("at-missing-bodies", a.missingBodies)
        t.counter("at-bad-raw-lengths", a.badRawLengths)
        let p = plane.counters
        t.counter("esp-unknown-spi", p.unknownSPI)
        t.counter("esp-truncated", p.truncated)
        t.counter("esp-malformed", p.malformed)
        t.counter("esp-bad-inner", p.badInner)
        t.counter("esp-policy-mismatch", p.policyMismatch)
        t.counter("esp-non-esp", p.nonESP)
        t.counter("esp-keepalives", p.keepalives)
        t.counter("esp-dummies", p.dummies)
        t.counter("esp-discarded", p.discarded)
        t.counter("esp-needs-key", p.needsKey)
        t.counter("esp-clear-refused", p.clearRefused)
        let k = kd.counters
        t.counter("kd-received", k.received)
        t.counter("kd-sent", k.sent)
        t.counter("kd-malformed", k.malformed)
        t.counter("kd-integrity-failures", k.integrityFailures)
        t.counter("kd-counter-low", k.counterLow)
        t.counter("kd-counter-blocked", k.counterBlocked)
        t.counter("kd-unknown-epoch", k.unknownEpoch)
        t.counter("kd-unexpected", k.unexpected)
        t.counter("kd-store-failures", k.storeFailures)
        t.counter("kd-outbox-full", k.outboxFull)
        t.counter("kd-requests-abandoned", k.requestsAbandoned)
        t.counter("kd-sas-installed", k.sasInstalled)
        t.counter("kd-sas-deleted", k.sasDeleted)
        t.counter("kd-errors-from-gateway", k.errorsFromGateway)
        t.counter("kd-wrong-carriage", k.wrongCarriage)
        t.counter("kd-sa-outside-policy", k.saOutsidePolicy)
        t.counter("kd-sa-peer-limit", k.saPeerLimit)
        t.counter("kd-sa-ipv6-refused", k.saIPv6Refused)
        t.counter("kd-addresses-adopted", k.addressesAdopted)
        let c = kd.carriage.counters
        t.counter("kd-sms-failures", c.smsFailures)
        t.counter("kd-udp-sent", c.udpSent)
        t.counter("kd-udp-received", c.udpReceived)
        t.counter("kd-refused", c.refused)
        t.counter("sas", plane.sas.count)
        t.line(worstCase ? SIMReport.longestStatusLine() : simStatusLine())
        for slot in 0..<Self.saSlots {
            if worstCase {
                var most = SACounters()
                most.packets = .max
                most.bytes = .max
                most.replays = .max
                most.icvFailures = .max
                t.line(Self.saLine(spi: .max, inbound: false, most))
                continue
            }
            guard let s = plane.sas.snapshot(slot: slot) else { continue }
            t.line(Self.saLine(spi: s.params.spi, inbound: s.params.direction == .inbound, s.counters))
        }
        return t
    }

    static func saLine(spi: UInt32, inbound: Bool, _ c: SACounters) -> LogLine {
        LogLine("sa ").append(spi).append(inbound ? " in" : " out").append(" packets ").append(c.packets)
            .append(" bytes ").append(c.bytes).append(" replays ").append(c.replays)
            .append(" icv-failures ").append(c.icvFailures)
    }

    static var saSlots: Int { 32 }
}
