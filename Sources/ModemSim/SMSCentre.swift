// The network's SMS centre: carries the module's SMS-SUBMITs out, and delivers SMS-DELIVERs in (store and forward:
// a part the module cannot take now waits until storage frees or the module is back).
//
// Control port (UDP, 127.0.0.1:<sms-port>), one JSON object per datagram, one JSON reply per request:
//   {"op":"send","from":"+15550123","text":"hi"}               deliver a text (GSM 7-bit, else UCS-2), split if long
//   {"op":"send","from":"+1555","data":"C0FFEE","port":2948,"srcPort":9200}   8-bit data, 16-bit port addressing
//        optional "order":"reverse"|"shuffle", "duplicate":true, "ref":N
//   {"op":"subscribe"}          this address then receives every "sms-mo" event line as a datagram
//   {"op":"register","stat":N}  {"op":"close-socket","id":N}  {"op":"reboot"}
// Replies: {"ok":true,...} or {"ok":false,"error":"..."}.
import Foundation

public enum DeliveryOrder: String, Sendable { case inOrder = "in-order", reverse, shuffle }

final class SMSCentre: @unchecked Sendable {
    let engine: ModemEngine
    let emit: (NetworkEvent) -> Void
    var pending: [(part: DeliverPart, from: String)] = []
    private var nextReference = 0
    private var subscribers: [UDPPeer] = []
    private var control: LoopbackUDPSocket?
    private var moParts: [String: [Int: SMSBody]] = [:]
    var smpp: SMPPService?
    /// With SMPP on: only MO SMS to this number go out as deliver_sm (nil: all of them).
    var smppNumber: String?

    init(engine: ModemEngine, emit: @escaping (NetworkEvent) -> Void) {
        self.engine = engine
        self.emit = emit
        engine.onSubmit = { [weak self] pdu, decoded, mr in self?.carry(pdu: pdu, decoded: decoded, mr: mr) }
        engine.onReadyForMT = { [weak self] in self?.flush() }
    }

    func listen(port: Int) throws(SystemCallError) -> Int {
        let endpoint = try LoopbackUDPSocket(port: port, queue: engine.queue) { [weak self] bytes, peer in
            self?.handleControl(bytes, from: peer)
        }
        control = endpoint
        return endpoint.port
    }

    func close() { control?.close(); control = nil; smpp?.close(); smpp = nil }

    // MARK: Mobile-terminated

    @discardableResult
    func deliver(from sender: String, body: SMSBody, portDst: Int? = nil, portSrc: Int? = nil,
                 order: DeliveryOrder = .inOrder, duplicate: Bool = false, reference: Int? = nil) -> (parts: Int, ref: Int) {
        let ref = reference ?? nextReference
        nextReference = (ref + 1) & 0xFF
        var parts = SimPDU.deliverParts(from: sender, smsc: engine.identity.smscNumber, body: body,
                                        portDst: portDst, portSrc: portSrc, reference: ref)
        let count = parts.count
        switch order {
        case .inOrder: break
        case .reverse: parts.reverse()
        case .shuffle:
            for i in stride(from: parts.count - 1, to: 0, by: -1) {
                parts.swapAt(i, engine.faults.randomIndex(below: i + 1))
            }
        }
        if duplicate, let first = parts.first { parts.append(first) }
        pending += networkFaults(parts).map { ($0, sender) }
        flush()
        return (count, ref)
    }

    /// The partial-sms, sms-reorder, sms-loss and sms-duplicate faults on one MT message's parts.
    func networkFaults(_ parts: [DeliverPart]) -> [DeliverPart] {
        var parts = parts
        if parts.count > 1, engine.faults.fires(.partialSMS) {
            emitFault(.partialSMS, [("parts", .int(parts.count))] + SMSCentre.headerFields(parts[0].header))
            parts = [parts[0]]
        }
        if parts.count > 1, engine.faults.fires(.smsReorder) {
            parts.reverse()
            emitFault(.smsReorder, [("parts", .int(parts.count))])
        }
        var carried: [DeliverPart] = []
        for p in parts {
            if engine.faults.fires(.smsLoss) {
                emitFault(.smsLoss, [("direction", .string("mt"))] + SMSCentre.headerFields(p.header))
                continue
            }
            carried.append(p)
            if engine.faults.fires(.smsDuplicate) {
                carried.append(p)
                emitFault(.smsDuplicate, [("direction", .string("mt"))] + SMSCentre.headerFields(p.header))
            }
        }
        return carried
    }

    func emitFault(_ kind: FaultKind, _ fields: [(String, JSONValue)] = []) {
        emit(NetworkEvent("fault", [("name", .string(kind.rawValue))] + fields))
    }

    /// Offers waiting parts to the module, oldest first; stops at the first refusal to keep the order.
    func flush() {
        while let next = pending.first {
            guard engine.deliverMT(next.part) else {
                emit(event("sms-mt-refused", next.part, from: next.from, extra: [("pending", .int(pending.count))]))
                return
            }
            pending.removeFirst()
            emit(event("sms-mt", next.part, from: next.from))
            let h = next.part.header
            if let seq = h.concatSeq, let total = h.concatTotal, seq < total, engine.faults.fires(.rebootBetweenParts) {
                // The rest waits here until the module is back (onReadyForMT flushes it).
                emitFault(.rebootBetweenParts, SMSCentre.headerFields(h))
                engine.reboot(reason: "fault")
                return
            }
        }
    }

    var pendingCount: Int { pending.count }

    private func event(_ name: String, _ part: DeliverPart, from: String, extra: [(String, JSONValue)] = []) -> NetworkEvent {
        var f: [(String, JSONValue)] = [("from", .string(from)), ("to", .string(engine.identity.ownNumber)),
                                        ("pdu", .string(Hex.encode(part.pdu))), ("tpdu-len", .int(part.tpduLength))]
        f += SMSCentre.headerFields(part.header)
        if let decoded = try? SimPDU.decodeDeliver(part.pdu) { f += SMSCentre.bodyFields(decoded.body) }
        return NetworkEvent(name, f + extra)
    }

    // MARK: Mobile-originated

    private func carry(pdu: [UInt8], decoded: DecodedSubmit, mr: Int) {
        if engine.faults.fires(.smsLoss) {
            emitFault(.smsLoss, [("direction", .string("mo")), ("mr", .int(mr))] + SMSCentre.headerFields(decoded.header))
            return
        }
        let copies = engine.faults.fires(.smsDuplicate) ? 2 : 1
        if copies > 1 { emitFault(.smsDuplicate, [("direction", .string("mo")), ("mr", .int(mr))]) }
        for _ in 0..<copies { carryOnce(pdu: pdu, decoded: decoded, mr: mr) }
    }

    private func carryOnce(pdu: [UInt8], decoded: DecodedSubmit, mr: Int) {
        var f: [(String, JSONValue)] = [("from", .string(engine.identity.ownNumber)), ("to", .string(decoded.destination)),
                                        ("mr", .int(mr)), ("pdu", .string(Hex.encode(pdu))),
                                        ("dcs", .int(Int(decoded.dcs)))]
        f += SMSCentre.headerFields(decoded.header)
        f += SMSCentre.bodyFields(decoded.body)
        let e = NetworkEvent("sms-mo", f)
        emit(e)
        for s in subscribers { control?.send(Array(e.jsonLine.utf8), to: s) }
        forwardOverSMPP(decoded)
        // Reassemble concatenated parts for one summary line.
        let h = decoded.header
        guard let ref = h.concatRef, let total = h.concatTotal, let seq = h.concatSeq, total > 1 else { return }
        let key = "\(decoded.destination)/\(ref)"
        moParts[key, default: [:]][seq] = decoded.body
        guard let parts = moParts[key], parts.count == total else { return }
        moParts[key] = nil
        let ordered = (1...total).compactMap { parts[$0] }
        let joined: SMSBody
        if case .text = ordered.first {
            joined = .text(ordered.map { (b: SMSBody) -> String in if case .text(let t) = b { return t }; return "" }.joined())
        } else {
            joined = .data(ordered.flatMap { (b: SMSBody) -> [UInt8] in if case .data(let d) = b { return d }; return [] })
        }
        let summary = NetworkEvent("sms-mo-complete", [("from", .string(engine.identity.ownNumber)),
                                                       ("to", .string(decoded.destination)), ("parts", .int(total))]
                                   + SMSCentre.bodyFields(joined))
        emit(summary)
        for s in subscribers { control?.send(Array(summary.jsonLine.utf8), to: s) }
    }

    static func headerFields(_ h: SMSHeader) -> [(String, JSONValue)] {
        var f: [(String, JSONValue)] = []
        if let r = h.concatRef, let t = h.concatTotal, let s = h.concatSeq {
            f += [("concat-ref", .int(r)), ("concat-total", .int(t)), ("concat-seq", .int(s))]
        }
        if let d = h.portDst { f.append(("port-dst", .int(d))) }
        if let s = h.portSrc { f.append(("port-src", .int(s))) }
        return f
    }

    static func bodyFields(_ body: SMSBody) -> [(String, JSONValue)] {
        switch body {
        case .text(let t): [("text", .string(t))]
        case .data(let d): [("data", .string(Hex.encode(d)))]
        }
    }

    // MARK: Control port

    private func handleControl(_ bytes: [UInt8], from peer: UDPPeer) {
        let reply: [String: Any]
        if let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], let op = obj["op"] as? String {
            reply = perform(op, obj, from: peer)
        } else {
            reply = ["ok": false, "error": "want a JSON object with \"op\""]
        }
        if reply["ok"] as? Bool != true { engine.counters.badControlRequests += 1 }
        if let data = try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys]) {
            control?.send(Array(data), to: peer)
        }
    }

    private func perform(_ op: String, _ obj: [String: Any], from peer: UDPPeer) -> [String: Any] {
        switch op {
        case "send":
            guard let from = obj["from"] as? String else { return ["ok": false, "error": "send needs \"from\""] }
            let body: SMSBody
            if let text = obj["text"] as? String { body = .text(text) }
            else if let hex = obj["data"] as? String, let data = Hex.decode(hex) { body = .data(data) }
            else { return ["ok": false, "error": "send needs \"text\" or hex \"data\""] }
            guard let order = DeliveryOrder(rawValue: obj["order"] as? String ?? "in-order") else {
                return ["ok": false, "error": "order is in-order, reverse or shuffle"]
            }
            let r = deliver(from: from, body: body, portDst: obj["port"] as? Int, portSrc: obj["srcPort"] as? Int,
                            order: order, duplicate: obj["duplicate"] as? Bool ?? false, reference: obj["ref"] as? Int)
            return ["ok": true, "parts": r.parts, "ref": r.ref, "pending": pending.count]
        case "subscribe":
            if !subscribers.contains(peer) { subscribers.append(peer) }
            return ["ok": true]
        case "register":
            guard let stat = obj["stat"] as? Int, (0...5).contains(stat) else { return ["ok": false, "error": "stat 0...5"] }
            engine.setRegistration(stat, report: true)
            if engine.isRegistered { flush() }
            return ["ok": true]
        case "close-socket":
            guard let id = obj["id"] as? Int, engine.sockets[id] != nil else { return ["ok": false, "error": "no such socket"] }
            engine.closeSocket(id, byNetwork: true)
            return ["ok": true]
        case "reboot":
            engine.reboot(reason: "control")
            return ["ok": true]
        default:
            return ["ok": false, "error": "unknown op \(op)"]
        }
    }
}
