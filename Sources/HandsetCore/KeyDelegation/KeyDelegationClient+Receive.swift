public enum KDReceiveResult: Equatable, Sendable {
    case accepted(KDMessageType)
    case rejected(KDStatus)
}

extension KeyDelegationClient {
    /// Handles one downlink message: a reassembled SMS payload on port KD.smsPort, or (`via: .udp`) a datagram
    /// with the non-ESP marker already removed. The order is: clear header, carriage rule, epoch, counter rule,
    /// AEAD, body decode, persist the counter, act. A rejection changes nothing but a counter.
    public mutating func receive<let sas: Int, let rules: Int>(_ wire: UnsafeRawBufferPointer, via carriage: KDCarriage = .sms,
                                                               now: UInt64,
                                                               plane: inout DataPlane<sas, rules>) -> KDReceiveResult {
        guard let h = KDHeader.read(wire, direction: .down) else {
            counters.malformed &+= 1
            return .rejected(.badMessage)
        }
        if carriage == .udp {
            // Refused before any crypto: an SMS-only type by UDP is never acted on, authentic or not.
            guard KD.allowedOverUDP(h.type) else {
                counters.wrongCarriage &+= 1
                return .rejected(.denied)
            }
            let r = receiveSealed(wire, header: h, now: now, plane: &plane)
            if case .accepted = r { self.carriage.counters.udpReceived &+= 1 }
            return r
        }
        return receiveSealed(wire, header: h, now: now, plane: &plane)
    }

    mutating func receiveSealed<let sas: Int, let rules: Int>(_ wire: UnsafeRawBufferPointer, header h: KDHeader,
                                                              now: UInt64,
                                                              plane: inout DataPlane<sas, rules>) -> KDReceiveResult {
        let usePending: Bool
        if keys.isSet && h.epoch == state.epoch {
            usePending = false
        } else if state.hasPending && pendingKeys.isSet && h.epoch == state.pendingEpoch {
            usePending = true
        } else {
            counters.unknownEpoch &+= 1
            return .rejected(.unknownEpoch)
        }
        // Checked on the clear header, before any crypto: refusing a counter changes nothing whether the message is
        // authentic or not, so a replay costs a comparison. No answer: it must not make the handset spend an SMS.
        let verdict = kdCheckCounter(h.counter, lastAccepted: state.downCounter)
        guard verdict == .ok else {
            if verdict == .counterLow { counters.counterLow &+= 1 } else { counters.counterBlocked &+= 1 }
            return .rejected(verdict)
        }
        var plain = FixedBytes<512>()
        defer { plain.wipe() }  // login-ack and sa-transfer plaintext hold keys
        var opened = false
        plain.fill { out in
            let n = usePending ? pendingKeys.open(wire, header: h, direction: .down, into: out)
                : keys.open(wire, header: h, direction: .down, into: out)
            opened = n != nil
            return n ?? 0
        }
        guard opened else {
            counters.integrityFailures &+= 1
            return .rejected(.integrityFailure)
        }
        return plain.withBytes { p -> KDReceiveResult in
            guard var body = KDBody.decode(h.type, p) else {
                counters.malformed &+= 1
                return .rejected(.badMessage)
            }
            defer { body.wipeKeys() }
            var next = state
            next.downCounter = h.counter
            return act(body, header: h, underPending: usePending, accepted: next, now: now, plane: &plane)
        }
    }

    mutating func act<let sas: Int, let rules: Int>(_ body: KDBody, header h: KDHeader, underPending: Bool,
                                                    accepted next: KeyState, now: UInt64,
                                                    plane: inout DataPlane<sas, rules>) -> KDReceiveResult {
        var next = next
        switch body {
        case .loginAck(let m):
            guard phase == .awaitingLoginAck, !underPending, m.hello == state.hello,
                  m.newEpoch == KD.nextEpoch(state.epoch), !m.newKey.isZero else { return unexpected(next) }
            next.pendingEpoch = m.newEpoch
            next.pendingKey = m.newKey
            guard commit(next) else { return .rejected(.busy) }
            guard deriveKeys() else { return .rejected(.badMessage) }
            phase = .awaitingConfirmAck
            sendConfirm(now: now)
        case .confirmAck(let epoch):
            guard underPending, epoch == state.pendingEpoch else { return unexpected(next) }
            next.epoch = next.pendingEpoch
            next.currentKey = next.pendingKey
            next.pendingEpoch = 0
            next.pendingKey.wipe()
            guard commit(next) else { return .rejected(.busy) }
            guard deriveKeys() else { return .rejected(.badMessage) }
            phase = .ready
            loginTries = 0
            resendPendingRequests(now: now)
        case .saTransfer(let t):
            // Before this boot's login-ack, a transfer can only be one sealed before the login that is under way,
            // and that login makes the gateway tell the peer to forget every SA: installed, the dead pair would
            // win outbound for its flow until its hard lifetime. (Found by `handset-emu torture`.)
            guard phase == .ready || phase == .awaitingConfirmAck else { return unexpected(next) }
            guard commit(next) else { return .rejected(.busy) }
            let status = install(t, plane: &plane)
            send(.saAck(KDSAAck(requestID: t.requestID, outboundSPI: t.outboundSPI, status: status)))
        case .saDelete(let d):
            guard commit(next) else { return .rejected(.busy) }
            if (try? plane.sas.delete(spi: d.outboundSPI, direction: .outbound)) != nil { counters.sasDeleted &+= 1 }
            if (try? plane.sas.delete(spi: d.inboundSPI, direction: .inbound)) != nil { counters.sasDeleted &+= 1 }
        case .secretData(let channel, let data):
            guard commit(next) else { return .rejected(.busy) }
            deliver(.secretData, id: channel, status: 0, truncated: false, data)
        case .fetchResponse(let id, let status, let truncated, let data):
            guard commit(next) else { return .rejected(.busy) }
            deliver(.fetchResponse, id: id, status: status, truncated: truncated, data)
        case .error:
            // Only ever an answer to an authentic, fresh request (denied, busy, ...): the gateway never answers a
            // bad counter, so there is nothing to resynchronise.
            guard commit(next) else { return .rejected(.busy) }
            counters.errorsFromGateway &+= 1
        case .login, .keyConfirm, .keyRequest, .saAck, .fetchRequest:
            return unexpected(next)
        }
        counters.received &+= 1
        return .accepted(h.type)
    }

    /// An authentic message that makes no sense now (a stale or duplicated answer): its counter is still
    /// consumed so that it cannot be replayed, but nothing else changes.
    mutating func unexpected(_ next: KeyState) -> KDReceiveResult {
        _ = commit(next)
        counters.unexpected &+= 1
        return .rejected(.badMessage)
    }

    mutating func deliver(_ type: KDMessageType, id: UInt16, status: UInt16, truncated: Bool, _ data: UnsafeRawBufferPointer) {
        var m = KDIncoming()
        m.type = type
        m.channelOrRequest = id
        m.httpStatus = status
        m.truncated = truncated
        m.bytes.fill { out in
            let n = min(out.count, data.count)
            if n > 0 { out.baseAddress!.copyMemory(from: data.baseAddress!, byteCount: n) }
            return n
        }
        inbox.push(m)
    }
}
