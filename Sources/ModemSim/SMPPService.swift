// The SMS centre's SMPP 3.4 face (server side): ESMEs bind as transceivers, submit_sm becomes an MT SMS for the
// module, and MO SMS go out as deliver_sm. One reader thread per connection; the centre's state stays on its queue.
import Foundation
import SMPP
#if canImport(Glibc)
import Glibc
#endif

public struct SMPPServiceCounters: Sendable, Equatable {
    public var connections = 0, binds = 0, bindsRefused = 0
    public var submits = 0, submitsRefused = 0, delivers = 0, deliverResps = 0, enquireLinks = 0
    public var held = 0, heldDropped = 0    // MO kept while no ESME was bound; the oldest dropped past the cap
    public var genericNacksSent = 0, genericNacksReceived = 0, notBound = 0
    public var malformed: [SMPPError: Int] = [:]
}

final class SMPPService: @unchecked Sendable {
    final class Session: @unchecked Sendable {
        let socket: SMPPSocket
        var bound = false       // touched on the centre's queue only
        var systemID = ""
        init(socket: SMPPSocket) { self.socket = socket }
    }

    private let queue: DispatchQueue
    private let password: String?
    /// Called on `queue`; returns the command_status for the submit_sm_resp.
    var onSubmit: (SMPPShortMessage) -> UInt32 = { _ in SMPPStatus.systemError }
    /// Called on `queue` after each successful bind, with the ESME's system_id.
    var onBind: (String) -> Void = { _ in }
    /// MO waiting for an ESME to bind (store and forward, as a real SMSC would).
    private var held: [SMPPShortMessage] = []
    static let heldCapacity = 64
    private(set) var counters = SMPPServiceCounters()   // on `queue`
    private var sessions: [Session] = []               // on `queue`
    private var listenFD: Int32 = -1
    private var accepting = false
    private var nextSequence: UInt32 = 0
    private var nextMessageID = 0

    /// - Parameter password: when set, a bind with another password gets ESME_RINVPASWD.
    init(queue: DispatchQueue, password: String? = nil) {
        self.queue = queue
        self.password = password
    }

    func listen(port: Int) throws(SMPPSocketError) -> Int {
        let (fd, bound) = try SMPPSocket.listen(port: port)
        listenFD = fd
        accepting = true
        let t = Thread { [self] in acceptLoop(fd) }
        t.name = "smsc-smpp-accept"
        t.start()
        return bound
    }

    /// Stops accepting and drops every session (on `queue`).
    func close() {
        accepting = false
        for s in sessions { s.socket.shutdown() }
        sessions.removeAll()
    }

    /// Offers `m` as deliver_sm to every bound session (on `queue`); returns how many got it. With none bound it is
    /// held (at most `heldCapacity`, oldest dropped first) until an ESME binds.
    @discardableResult
    func deliver(_ m: SMPPShortMessage) -> Int {
        var sent = 0
        for s in sessions where s.bound {
            if send(m, to: s) { sent += 1 }
        }
        counters.delivers += sent
        if sent == 0 {
            if held.count == Self.heldCapacity { held.removeFirst(); counters.heldDropped += 1 }
            held.append(m)
            counters.held += 1
        }
        return sent
    }

    private func send(_ m: SMPPShortMessage, to s: Session) -> Bool {
        nextSequence = nextSequence >= 0x7FFF_FFFF ? 1 : nextSequence + 1
        return (try? s.socket.send(SMPPPDU(.deliverSM(m), sequence: nextSequence))) != nil
    }

    /// After a bind_transceiver_resp went out: what waited goes to this ESME, oldest first.
    private func flushHeld(to s: Session) {
        while let m = held.first, s.bound, send(m, to: s) {
            held.removeFirst()
            counters.delivers += 1
        }
    }

    var heldCount: Int { held.count }

    var boundSessions: Int { sessions.filter(\.bound).count }

    private func acceptLoop(_ fd: Int32) {
        while queue.sync(execute: { accepting }) {
            guard let socket = SMPPSocket.accept(listening: fd, timeoutMs: 100) else { continue }
            let session = Session(socket: socket)
            let open = queue.sync { () -> Bool in
                guard accepting else { return false } // close() ran while accept() waited: nobody would shut it
                sessions.append(session)
                counters.connections += 1
                return true
            }
            guard open else { socket.close(); break }
            let t = Thread { [self] in readLoop(session) }
            t.name = "smsc-smpp-session"
            t.start()
        }
        Glibc.close(fd)
    }

    private func readLoop(_ s: Session) {
        while true {
            let bytes: [UInt8]
            do { bytes = try s.socket.readPDU() } catch {
                if case .badFrame(let e) = error {
                    queue.sync { counters.malformed[e, default: 0] += 1; counters.genericNacksSent += 1 }
                    try? s.socket.send(SMPPPDU(.genericNack, sequence: 0, status: SMPPStatus.invalidCommandLength))
                }
                break
            }
            let pdu: SMPPPDU
            do { pdu = try SMPPPDU.decode(bytes) } catch {
                let seq = (try? SMPPPDU.header(bytes))?.sequence ?? 0
                let status = if case .unknownCommand = error { SMPPStatus.invalidCommandID }
                             else { SMPPStatus.invalidMessageLength }
                queue.sync { counters.malformed[error, default: 0] += 1; counters.genericNacksSent += 1 }
                try? s.socket.send(SMPPPDU(.genericNack, sequence: seq, status: status))
                continue
            }
            let reply = queue.sync { answer(pdu, s) }
            if let reply { try? s.socket.send(reply) }
            if case .bindTransceiverResp = reply?.body, reply?.status == SMPPStatus.ok {
                queue.sync { onBind(s.systemID); flushHeld(to: s) }
            }
            if case .unbind = pdu.body { break }
        }
        queue.sync { sessions.removeAll { $0 === s } }
        s.socket.close()
    }

    /// The response to one request, decided on `queue`.
    private func answer(_ pdu: SMPPPDU, _ s: Session) -> SMPPPDU? {
        let seq = pdu.sequence
        switch pdu.body {
        case .bindTransceiver(let b):
            if s.bound {
                return SMPPPDU(.bindTransceiverResp(systemID: "smsc"), sequence: seq, status: SMPPStatus.alreadyBound)
            }
            if let password, b.password != password {
                counters.bindsRefused += 1
                return SMPPPDU(.bindTransceiverResp(systemID: ""), sequence: seq, status: SMPPStatus.invalidPassword)
            }
            s.bound = true
            s.systemID = b.systemID
            counters.binds += 1
            return SMPPPDU(.bindTransceiverResp(systemID: "smsc"), sequence: seq)
        case .submitSM(let m):
            guard s.bound else {
                counters.notBound += 1
                return SMPPPDU(.submitSMResp(messageID: ""), sequence: seq, status: SMPPStatus.incorrectBindStatus)
            }
            let status = onSubmit(m)
            if status == SMPPStatus.ok {
                counters.submits += 1
                nextMessageID += 1
                return SMPPPDU(.submitSMResp(messageID: String(nextMessageID, radix: 16)), sequence: seq)
            }
            counters.submitsRefused += 1
            return SMPPPDU(.submitSMResp(messageID: ""), sequence: seq, status: status)
        case .enquireLink:
            counters.enquireLinks += 1
            return SMPPPDU(.enquireLinkResp, sequence: seq)
        case .unbind:
            s.bound = false
            return SMPPPDU(.unbindResp, sequence: seq)
        case .deliverSMResp:
            counters.deliverResps += 1
            return nil
        case .genericNack:
            counters.genericNacksReceived += 1
            return nil
        case .enquireLinkResp, .unbindResp, .submitSMResp, .bindTransceiverResp:
            return nil
        case .deliverSM:
            counters.genericNacksSent += 1
            return SMPPPDU(.genericNack, sequence: seq, status: SMPPStatus.invalidCommandID)
        }
    }
}
