// SMS in PDU mode (TS 27.005 §3, §4): storage of fixed size, +CMGS with the prompt, +CMGR/+CMGD/+CMGL, +CMTI/+CMT.

struct StoredMessage {
    var stat: Int               // 0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT
    var pdu: [UInt8]
    var tpduLength: Int
}

extension ModemEngine {
    static let smsCommands: [String: Handler] = [
        "+CMGF": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CMGF: \(e.cmgf)")
            case .test: return Reply(line: "+CMGF: (0-1)")
            case .exec: e.cmgf = 0; return Reply()
            case .set:
                guard let v = c.int(0), v == 0 || v == 1 else { return Reply(.cms(303)) }
                e.cmgf = v
                return Reply()
            }
        },
        "+CSMS": { _, c in c.form == .read ? Reply(line: "+CSMS: 0,1,1,1") : c.form == .test ? Reply(line: "+CSMS: (0-1)")
            : Reply(line: "+CSMS: 1,1,1") },
        "+CSMP": { _, _ in Reply() },
        "+CNMA": { _, _ in Reply() },
        "+CNMI": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CNMI: " + e.cnmi.map(String.init).joined(separator: ","))
            case .test: return Reply(line: "+CNMI: (0-2),(0-3),(0,2),(0-2),(0-1)")
            case .exec: return Reply()
            case .set:
                var v = e.cnmi
                for i in 0..<min(5, c.args.count) where !c.args[i].text.isEmpty {
                    guard let n = c.int(i), (0...3).contains(n) else { return Reply(.cms(303)) }
                    v[i] = n
                }
                e.cnmi = v
                return Reply()
            }
        },
        "+CPMS": { e, c in
            let used = e.storage.compactMap { $0 }.count, total = e.storage.count
            let mem = e.smsStorageName
            switch c.form {
            case .read:
                return Reply(line: "+CPMS: \"\(mem)\",\(used),\(total),\"\(mem)\",\(used),\(total),\"\(mem)\",\(used),\(total)")
            case .test: return Reply(line: "+CPMS: (\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\"),(\"SM\",\"ME\",\"MT\")")
            case .exec: return Reply(.cms(302))
            case .set:
                // One physical store; the three names select it alike.
                for a in c.args where !a.text.isEmpty {
                    guard ["SM", "ME", "MT"].contains(a.text.uppercased()) else { return Reply(.cms(302)) }
                }
                if let first = c.string(0) { e.smsStorageName = first.uppercased() }
                let pairs = Array(repeating: "\(used),\(total)", count: max(1, min(3, c.args.count)))
                return Reply(line: "+CPMS: " + pairs.joined(separator: ","))
            }
        },
        "+CMGS": { e, c in
            guard c.form == .set else { return c.form == .test ? Reply() : Reply(.cms(302)) }
            guard e.cmgf == 0 else { return Reply(.cms(302)) } // text mode is not simulated
            guard let len = c.int(0), (7...164).contains(len) else { return Reply(.cms(304)) }
            if e.faults.isArmed(.smsSendFail), e.faults.fires(.smsSendFail) {
                e.emit(NetworkEvent("fault", [("name", .string(FaultKind.smsSendFail.rawValue))]))
                return Reply(.cms(e.faults.value(of: .smsSendFail) ?? 331))
            }
            return e.prompt(e.profile.smsPrompt, then: .smsPDU(length: len))
        },
        "+CMGW": { e, c in
            guard c.form == .set, e.cmgf == 0 else { return Reply(.cms(302)) }
            guard let len = c.int(0), (7...164).contains(len) else { return Reply(.cms(304)) }
            guard e.freeSlot() != nil, !e.faults.isArmed(.smsFull) else { return Reply(.cms(322)) }
            return e.prompt(e.profile.smsPrompt, then: .smsPDU(length: -len))
        },
        "+CMGR": { e, c in
            guard c.form == .set, let index = c.int(0) else { return c.form == .test ? Reply() : Reply(.cms(302)) }
            guard let slot = e.slot(forIndex: index) else { return Reply(.cms(321)) }
            guard var sms = e.storage[slot] else { return Reply() }
            var r = Reply(line: "+CMGR: \(sms.stat),,\(sms.tpduLength)")
            r.lines.append(Array(Hex.encode(sms.pdu).utf8))
            if sms.stat == 0 { sms.stat = 1; e.storage[slot] = sms }
            return r
        },
        "+CMGD": { e, c in
            guard c.form == .set, let index = c.int(0) else {
                return c.form == .test ? Reply(line: "+CMGD: (\(e.indexRange)),(0-4)") : Reply(.cms(302))
            }
            let flag = c.int(1) ?? 0
            if flag == 0 {
                guard let slot = e.slot(forIndex: index) else { return Reply(.cms(321)) }
                e.storage[slot] = nil
            } else {
                // 1 read, 2 read+sent, 3 read+sent+unsent, 4 all (TS 27.005 §3.5.4)
                let doomed: Set<Int> = [[1], [1, 3], [1, 2, 3], [0, 1, 2, 3]][min(flag, 4) - 1].reduce(into: []) { $0.insert($1) }
                for i in e.storage.indices where e.storage[i].map({ doomed.contains($0.stat) }) == true { e.storage[i] = nil }
            }
            e.queue.async { e.onReadyForMT?() } // after the OK, as freed memory is reported to the network
            return Reply()
        },
        "+CMGL": { e, c in
            if c.form == .test { return Reply(line: "+CMGL: (0-4)") }
            let wanted = c.form == .set ? (c.int(0) ?? 0) : 0
            guard (0...4).contains(wanted) else { return Reply(.cms(303)) }
            var r = Reply()
            for (slot, stored) in e.storage.enumerated() {
                guard var sms = stored, wanted == 4 || sms.stat == wanted else { continue }
                r.lines.append(Array("+CMGL: \(slot + e.profile.smsFirstIndex),\(sms.stat),,\(sms.tpduLength)".utf8))
                r.lines.append(Array(Hex.encode(sms.pdu).utf8))
                if sms.stat == 0 { sms.stat = 1; e.storage[slot] = sms }
            }
            return r
        },
    ]

    var indexRange: String { "\(profile.smsFirstIndex)-\(profile.smsFirstIndex + storage.count - 1)" }

    func slot(forIndex index: Int) -> Int? {
        let slot = index - profile.smsFirstIndex
        return storage.indices.contains(slot) ? slot : nil
    }

    func freeSlot() -> Int? { storage.firstIndex { $0 == nil } }

    /// Ends the "> " dialogue of +CMGS (length > 0) or +CMGW (length < 0).
    func submitPDU(hex: String, length: Int) -> Reply {
        guard let pdu = Hex.decode(hex), let scaLen = pdu.first, pdu.count == Int(scaLen) + 1 + abs(length) else {
            counters.rejectedPDUs += 1
            return Reply(.cms(304))
        }
        let decoded: DecodedSubmit
        do { decoded = try SimPDU.decodeSubmit(pdu) } catch {
            counters.rejectedPDUs += 1
            logger.info("rejected SMS-SUBMIT", metadata: ["error": "\(error)"])
            return Reply(.cms(304))
        }
        if length < 0 {
            guard let slot = freeSlot() else { return Reply(.cms(322)) }
            storage[slot] = StoredMessage(stat: 2, pdu: pdu, tpduLength: -length)
            return Reply(line: "+CMGW: \(slot + profile.smsFirstIndex)")
        }
        guard isRegistered else { return Reply(.cms(331)) } // no network service
        if faults.fires(.rebootMidSMS) { return rebootMidSMS(pdu, decoded) }
        messageReference = (messageReference + 1) & 0xFF
        onSubmit?(pdu, decoded, messageReference)
        return Reply(line: "+CMGS: \(messageReference)")
    }

    /// reboot-mid-sms: the module goes down holding the PDU; the network may or may not have it. No answer.
    private func rebootMidSMS(_ pdu: [UInt8], _ decoded: DecodedSubmit) -> Reply {
        let sent = faults.value(of: .rebootMidSMS) == 1 || faults.coinFlip()
        if sent {
            messageReference = (messageReference + 1) & 0xFF
            onSubmit?(pdu, decoded, messageReference)
        }
        emit(NetworkEvent("fault", [("name", .string(FaultKind.rebootMidSMS.rawValue)), ("sent", .bool(sent))]))
        reboot(reason: "fault")
        return Reply(.none)
    }

    /// An SMS-DELIVER from the SMS centre. Returns false when the module cannot take it now (booting, storage full).
    func deliverMT(_ part: DeliverPart) -> Bool {
        guard case .command = mode, isRegistered else { return false }
        let mt = cnmi.count > 1 ? cnmi[1] : 0
        if mt == 2 {
            // Routed straight to the TE, not stored (TS 27.005 §3.4.1 <mt>=2).
            urc("+CMT: ,\(part.tpduLength)\r\n" + Hex.encode(part.pdu))
            return true
        }
        if faults.isArmed(.smsFull), faults.fires(.smsFull) {
            emit(NetworkEvent("fault", [("name", .string(FaultKind.smsFull.rawValue))]))
            reportStorageFull()
            return false
        }
        guard let slot = freeSlot() else { reportStorageFull(); return false }
        storage[slot] = StoredMessage(stat: 0, pdu: part.pdu, tpduLength: part.tpduLength)
        if mt == 1 || mt == 3 { urc("+CMTI: \"\(smsStorageName)\",\(slot + profile.smsFirstIndex)") }
        if freeSlot() == nil { reportStorageFull() }
        return true
    }

    func reportStorageFull() {
        if smsFullReport, let text = profile.smsFullURC { urc(text) }
    }

    /// Quectel AT+QINDCFG="smsfull",<enable>[,<savetonvram>] (BG96 AT manual, indication configuration).
    static let quectelIndicationConfig: Handler = { e, c in
        guard c.string(0)?.lowercased() == "smsfull" else { return c.form == .test ? Reply() : Reply(.error) }
        if c.args.count == 1 { return Reply(line: "+QINDCFG: \"smsfull\",\(e.smsFullReport ? 1 : 0)") }
        guard let v = c.int(1), v == 0 || v == 1 else { return Reply(.error) }
        e.smsFullReport = v == 1
        return Reply()
    }
}
