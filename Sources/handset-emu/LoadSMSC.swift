import Foundation
import SMPP
#if canImport(Glibc)
import Glibc
#endif

/// The SMS centre of `handset-emu load`: the gateway instances bind to it as transceivers. Handset uplinks go out as
/// deliver_sm (split into port-addressed parts), each part kept until its deliver_sm_resp; a part whose link drops
/// before that is delivered again on a bound link (store and forward), and one answered ESME_RX_T_APPN is retried.
/// submit_sm parts are answered at once, reassembled, and handed to `onDownlink` by destination number.
final class LoadSMSC: @unchecked Sendable {
    struct Counters {
        var binds = 0, linksLost = 0, partsSent = 0, partsAcked = 0, partsRedelivered = 0, partsRetried = 0
        var partsRefused = 0, submits = 0, submitsMalformed = 0
    }

    final class Session: @unchecked Sendable {
        let socket: SMPPSocket
        let number: Int
        var bound = false
        var alive = true
        var systemID = ""
        init(socket: SMPPSocket, number: Int) { self.socket = socket; self.number = number }
    }

    /// One uplink SMS on its way: its parts, which are still unacknowledged, and who to tell.
    final class Uplink: @unchecked Sendable {
        let device: Int
        /// The message's uplink counter, handed back with its acknowledgement.
        let counter: UInt64
        let parts: [SMPPShortMessage]
        var unacked: Set<Int>
        let sentAt: Double
        var failed = false
        /// Per part: how often the gateway answered ESME_RX_T_APPN (try again later).
        var retries: [Int: Int] = [:]
        init(device: Int, counter: UInt64, parts: [SMPPShortMessage], sentAt: Double) {
            self.device = device; self.counter = counter; self.parts = parts; unacked = Set(parts.indices); self.sentAt = sentAt
        }
    }

    struct Outstanding { var uplink: Uplink; var part: Int; var session: Session }

    let lock = NSLock()
    let listenFD: Int32
    let port: Int
    let gatewayNumber: String
    private(set) var counters = Counters()
    private var sessions: [Session] = []
    private var outstanding: [UInt32: Outstanding] = [:]
    /// Parts waiting for a bound link (none bound, or one was lost), with when to try again.
    private var waiting: [(Uplink, Int, Double)] = []
    private var sequence: UInt32 = 0
    private var running = true
    private var reassembly: [String: [Int: [UInt8]]] = [:]
    private var nextSession = 0
    /// (device index, the uplink's counter, its latency to the last part's acknowledgement in seconds; nil: refused).
    var onAck: (Int, UInt64, Double?) -> Void = { _, _, _ in }
    /// (destination number without "+", reassembled payload).
    var onDownlink: (String, [UInt8]) -> Void = { _, _ in }

    init(gatewayNumber: String) throws {
        (listenFD, port) = try SMPPSocket.listen(port: 0)
        self.gatewayNumber = gatewayNumber
        Thread.detachNewThread { [self] in acceptLoop() }
        Thread.detachNewThread { [self] in retryLoop() }
    }

    var boundLinks: Int { lock.withLock { sessions.filter { $0.bound && $0.alive }.count } }
    /// Parts delivered to the gateway that bound as `systemID` and not yet acknowledged by it.
    func unacknowledged(by systemID: String) -> Int {
        lock.withLock { outstanding.values.filter { $0.session.systemID == systemID && $0.session.alive }.count }
    }
    var snapshot: Counters { lock.withLock { counters } }

    /// One part not acknowledged (yet): where it is, for the end-of-run check.
    struct Unacknowledged {
        enum State: String { case awaitingAnswer = "delivered, no answer", retrying = "answered 0x65, due again", noLink = "waiting for a link" }
        var device: Int, counter: UInt64, part: Int, state: State, retries: Int, age: Double
    }

    /// Every part not acknowledged: delivered to a gateway and not answered, or waiting to be delivered (again).
    func unacknowledgedParts() -> [Unacknowledged] {
        let now = loadClock()
        return lock.withLock {
            outstanding.values.map {
                Unacknowledged(device: $0.uplink.device, counter: $0.uplink.counter, part: $0.part, state: .awaitingAnswer,
                               retries: $0.uplink.retries[$0.part] ?? 0, age: now - $0.uplink.sentAt)
            } + waiting.map { u, part, due in
                let retries = u.retries[part] ?? 0
                return Unacknowledged(device: u.device, counter: u.counter, part: part, state: retries > 0 && due > 0 ? .retrying : .noLink,
                                      retries: retries, age: now - u.sentAt)
            }
        }
    }
    var unacknowledged: Int { lock.withLock { outstanding.count + waiting.count } }

    func stop() {
        let all = lock.withLock { () -> [Session] in
            running = false
            return sessions
        }
        for s in all { s.socket.shutdown() }
        Glibc.close(listenFD)
    }

    /// Cuts every link (as a network fault would): what was unacknowledged on them is delivered again once a
    /// gateway has bound anew.
    func dropLinks() {
        let all = lock.withLock { sessions.filter(\.alive) }
        for s in all { linkLost(s) }
    }

    /// Sends `payload` from `msisdn` (with "+") as one or more deliver_sm; the ack comes through `onAck`.
    func send(device: Int, counter: UInt64, from msisdn: String, payload: [UInt8]) {
        let now = loadClock()
        let reference = UInt16.random(in: 0...UInt16.max)
        guard let parts = try? PortAddressedSMS.parts(payload, portDst: 16400, portSrc: 16400, reference: reference) else {
            onAck(device, counter, nil)
            return
        }
        let sender = String(msisdn.drop { $0 == "+" })
        let recipient = String(gatewayNumber.drop { $0 == "+" })
        let messages = parts.map { userData -> SMPPShortMessage in
            var m = SMPPShortMessage()
            m.sourceTON = 1
            m.sourceAddr = sender
            m.destTON = 1
            m.destAddr = recipient
            m.esmClass = SMPPShortMessage.udhi
            m.dataCoding = 0x04
            m.shortMessage = userData
            return m
        }
        let u = Uplink(device: device, counter: counter, parts: messages, sentAt: now)
        for i in parts.indices { transmit(u, part: i, preferring: device) }
    }

    /// Sends one part on the device's link (device index modulo the bound links), or parks it until one is bound.
    private func transmit(_ u: Uplink, part: Int, preferring device: Int) {
        let chosen: (Session, UInt32)? = lock.withLock {
            let live = sessions.filter { $0.bound && $0.alive }
            guard !live.isEmpty else {
                waiting.append((u, part, 0))
                return nil
            }
            let s = live[device % live.count]
            sequence = sequence >= 0x7FFF_FFFF ? 1 : sequence + 1
            outstanding[sequence] = Outstanding(uplink: u, part: part, session: s)
            counters.partsSent += 1
            return (s, sequence)
        }
        guard let (s, seq) = chosen else { return }
        if (try? s.socket.send(SMPPPDU(.deliverSM(u.parts[part]), sequence: seq))) == nil {
            linkLost(s)
        }
    }

    /// Every part outstanding on `s` is delivered again elsewhere: the gateway that held it never acknowledged it.
    private func linkLost(_ s: Session) {
        lock.withLock {
            guard s.alive else { return }
            s.alive = false
            if s.bound { counters.linksLost += 1 }  // not after an unbind
            let mine = outstanding.filter { $0.value.session === s }
            for k in mine.keys { outstanding.removeValue(forKey: k) }
            counters.partsRedelivered += mine.count
            for o in mine.values { waiting.append((o.uplink, o.part, 0)) }
        }
        s.socket.shutdown()
    }

    private func retryLoop() {
        while lock.withLock({ running }) {
            usleep(20_000)
            let now = loadClock()
            let due: [(Uplink, Int)] = lock.withLock {
                guard sessions.contains(where: { $0.bound && $0.alive }) else { return [] }
                let ready = waiting.filter { $0.2 <= now }
                waiting.removeAll { $0.2 <= now }
                return ready.map { ($0.0, $0.1) }
            }
            for (u, p) in due { transmit(u, part: p, preferring: u.device) }
        }
    }

    private func acceptLoop() {
        var number = 0
        while lock.withLock({ running }) {
            guard let socket = SMPPSocket.accept(listening: listenFD, timeoutMs: 100) else { continue }
            number += 1
            let s = Session(socket: socket, number: number)
            lock.withLock { sessions.append(s) }
            Thread.detachNewThread { [self] in readLoop(s) }
        }
    }

    private func readLoop(_ s: Session) {
        while true {
            guard let bytes = try? s.socket.readPDU() else { break }
            guard let pdu = try? SMPPPDU.decode(bytes) else {
                try? s.socket.send(SMPPPDU(.genericNack, sequence: 0, status: SMPPStatus.invalidCommandID))
                continue
            }
            switch pdu.body {
            case .bindTransceiver(let b):
                lock.withLock { s.bound = true; s.systemID = b.systemID; counters.binds += 1 }
                try? s.socket.send(SMPPPDU(.bindTransceiverResp(systemID: "load-smsc"), sequence: pdu.sequence))
            case .enquireLink:
                try? s.socket.send(SMPPPDU(.enquireLinkResp, sequence: pdu.sequence))
            case .unbind:
                lock.withLock { s.bound = false }
                try? s.socket.send(SMPPPDU(.unbindResp, sequence: pdu.sequence))
            case .submitSM(let m):
                let id = lock.withLock { () -> Int in counters.submits += 1; return counters.submits }
                try? s.socket.send(SMPPPDU(.submitSMResp(messageID: String(id, radix: 16)), sequence: pdu.sequence))
                downlinkPart(m)
            case .deliverSMResp:
                acknowledged(pdu.sequence, status: pdu.status)
            default:
                break
            }
        }
        linkLost(s)
        s.socket.close()
    }

    private func acknowledged(_ seq: UInt32, status: UInt32) {
        let now = loadClock()
        let done: (Int, UInt64, Double?)? = lock.withLock {
            guard let o = outstanding.removeValue(forKey: seq) else { return nil }
            let u = o.uplink
            switch status {
            case SMPPStatus.ok:
                counters.partsAcked += 1
                u.unacked.remove(o.part)
                return u.unacked.isEmpty ? (u.device, u.counter, u.failed ? nil : now - u.sentAt) : nil
            case SMPPStatus.temporaryAppError:
                counters.partsRetried += 1
                u.retries[o.part, default: 0] += 1
                waiting.append((u, o.part, now + 0.2))
                return nil
            default:
                counters.partsRefused += 1
                u.failed = true
                u.unacked.remove(o.part)
                return u.unacked.isEmpty ? (u.device, u.counter, nil) : nil
            }
        }
        if let (d, c, latency) = done { onAck(d, c, latency) }
    }

    private func downlinkPart(_ m: SMPPShortMessage) {
        guard let (udh, payload) = try? PortAddressedSMS.parse(m.userData, udhi: m.hasUDH), udh.portDst == 16400 else {
            lock.withLock { counters.submitsMalformed += 1 }
            return
        }
        let to = String(m.destAddr.drop { $0 == "+" })
        guard let ref = udh.concatRef, let total = udh.concatTotal, let seq = udh.concatSeq, total > 1 else {
            onDownlink(to, payload)
            return
        }
        let whole: [UInt8]? = lock.withLock {
            let key = "\(to)/\(ref)"
            var parts = reassembly[key] ?? [:]
            parts[seq] = payload
            guard parts.count == total else { reassembly[key] = parts; return nil }
            reassembly.removeValue(forKey: key)
            return (1...total).flatMap { parts[$0] ?? [] }
        }
        if let whole { onDownlink(to, whole) }
    }
}

/// Seconds on a monotonic clock.
func loadClock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
