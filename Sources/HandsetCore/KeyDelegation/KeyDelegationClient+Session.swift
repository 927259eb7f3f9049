extension KeyDelegationClient {
    /// Starts (or resumes) a session. With a rotation in flight it resumes phase 2 and never falls back to
    /// the old key: the gateway may already have dropped it.
    public mutating func boot(now: UInt64) {
        if state.hasPending {
            phase = .awaitingConfirmAck
            sendConfirm(now: now)
        } else {
            login(now: now)
        }
    }

    mutating func login(now: UInt64) {
        var next = state
        next.hello = random.next64()
        guard commit(next) else { return }
        phase = .awaitingLoginAck
        lastLoginSent = now
        loginTries += 1
        send(.login(KDLogin(hello: state.hello, firmware: 1, capabilities: 0b111)))
    }

    mutating func sendConfirm(now: UInt64) {
        lastLoginSent = now
        loginTries += 1
        send(.keyConfirm(hello: state.hello), underPending: true)
    }

    /// The data plane said "needs key" for `selector`: ask the gateway, once per flow, retrying on a timer.
    public mutating func requestKey(template: UInt16, selector: TrafficSelector, now: UInt64) {
        var s = selector
        s.local = innerAddress
        for i in 0..<8 where requests[i].used && requests[i].template == template && requests[i].selector == s {
            return
        }
        guard let free = firstFreeRequest() else { counters.requestsAbandoned &+= 1; return }
        requests[free] = PendingRequest(used: true, id: nextRequestID, template: template, selector: s, sentAt: now, tries: 0)
        nextRequestID = nextRequestID == UInt16.max ? 1 : nextRequestID + 1
        if phase == .ready { sendRequest(free, now: now) }
    }

    func firstFreeRequest() -> Int? {
        for i in 0..<8 where !requests[i].used { return i }
        return nil
    }

    mutating func sendRequest(_ i: Int, now: UInt64) {
        requests[i].sentAt = now
        requests[i].tries += 1
        send(.keyRequest(KDKeyRequest(requestID: requests[i].id, template: requests[i].template,
                                      selector: requests[i].selector)))
    }

    mutating func resendPendingRequests(now: UInt64) {
        for i in 0..<8 where requests[i].used { sendRequest(i, now: now) }
    }

    /// Retries, timeouts and SA lifetime events. Call about once a second.
    public mutating func tick<let sas: Int, let rules: Int>(now: UInt64, plane: inout DataPlane<sas, rules>) {
        plane.sas.tick(now: now)
        carriage.tick(now: now)
        while let e = plane.sas.events.pop() {
            switch e {
            case .softExpired(let spi, .outbound), .sequenceExhausted(let spi):
                rekey(outboundSPI: spi, now: now, plane: &plane)
            default:
                break
            }
        }
        let backoff = Self.retrySeconds << UInt64(min(loginTries, 4))
        switch phase {
        case .awaitingLoginAck where now &- lastLoginSent >= backoff: login(now: now)
        case .awaitingConfirmAck where now &- lastLoginSent >= backoff: sendConfirm(now: now)
        case .ready:
            for i in 0..<8 where requests[i].used && now &- requests[i].sentAt >= Self.retrySeconds {
                if requests[i].tries >= Self.maxRequestTries {
                    requests[i].used = false
                    counters.requestsAbandoned &+= 1
                } else {
                    sendRequest(i, now: now)
                }
            }
        default:
            break
        }
    }

    /// Make-before-break: ask for a fresh pair covering the same traffic while the old SA still works.
    mutating func rekey<let sas: Int, let rules: Int>(outboundSPI spi: UInt32, now: UInt64, plane: inout DataPlane<sas, rules>) {
        guard let snap = plane.sas.snapshot(spi: spi, direction: .outbound) else { return }
        let sel = snap.params.selector
        let s = TrafficSelector(local: innerAddress, remote: sel.remote, proto: sel.proto,
                                localPort: sel.localPorts == .any ? 0 : sel.localPorts.low,
                                remotePort: sel.remotePorts == .any ? 0 : sel.remotePorts.low)
        requestKey(template: 0, selector: s, now: now)
    }

    /// Secret data travels only inside key-delegation messages over SMS, never on the data plane and never by
    /// UDP: while SMS is unavailable it is refused before a counter is spent.
    @discardableResult
    public mutating func sendSecret(channel: UInt16, _ data: UnsafeRawBufferPointer) -> Bool {
        guard phase == .ready, data.count <= KD.maxMessage - KD.uplinkHeader - KD.tagLength - 2,
              carriage.admitSMSOnly() else { return false }
        return send(.secretData(channel: channel, data: data))
    }

    /// Asks the gateway to fetch `url` over https on the handset's behalf; the answer arrives in `inbox`.
    @discardableResult
    public mutating func fetch(_ url: UnsafeRawBufferPointer) -> UInt16? {
        guard phase == .ready, url.count <= 200, carriage.admitSMSOnly() else { return nil }
        let id = nextRequestID
        nextRequestID = nextRequestID == UInt16.max ? 1 : nextRequestID + 1
        return send(.fetchRequest(requestID: id, url: url)) ? id : nil
    }

    /// Installs both halves of a transferred pair, or neither.
    /// Checked first against what the handset asked for or its policy (KeyDelegationClient+SAPolicy.swift).
    mutating func install<let sas: Int, let rules: Int>(_ t: KDSATransfer, plane: inout DataPlane<sas, rules>) -> KDStatus {
        if plane.sas.slot(spi: t.outboundSPI, direction: .outbound) != nil,
           plane.sas.slot(spi: t.inboundSPI, direction: .inbound) != nil {
            return .ok  // a retransmission whose SA_ACK was lost
        }
        let admitted = admit(t, plane: &plane)
        let answered = pendingRequest(id: t.requestID)
        if let i = answered { requests[i].used = false }
        guard admitted == .ok else { return admitted }
        // The gateway bound another address (the server's pool chose it): durable before any SA uses it.
        if let bound = t.handset, bound != innerAddress {
            var next = state
            next.innerAddress = bound
            guard commit(next) else { return .denied }
            counters.addressesAdopted &+= 1
        }
        let selector = t.selectorPattern
        let local = innerAddress
        let mode: ESPMode = t.tunnel ? .tunnel(local: local, remote: t.peer) : .transport
        let life = SALifetime(softSeconds: UInt64(t.softSeconds), hardSeconds: UInt64(t.hardSeconds))
        var out = SAParameters(spi: t.outboundSPI, direction: .outbound, algorithm: t.algorithm, keyLength: t.keyLength,
                               salt: t.outboundSalt, mode: mode, local: local, selector: selector, peer: t.peer,
                               peerPort: t.peerPort, esn: t.esn, implicitIV: t.implicitIV, lifetime: life)
        guard installOne(out, key: t.outboundKey, plane: &plane) else { return .denied }
        out.spi = t.inboundSPI
        out.direction = .inbound
        out.salt = t.inboundSalt
        guard installOne(out, key: t.inboundKey, plane: &plane) else {
            try? plane.sas.delete(spi: t.outboundSPI, direction: .outbound)
            return .denied
        }
        counters.sasInstalled &+= 2
        if answered == nil { notePushed(t) }
        var e = KDInstalled()
        e.outboundSPI = t.outboundSPI
        e.inboundSPI = t.inboundSPI
        e.requestID = t.requestID
        installed.push(e)
        return .ok
    }

    func installOne<let sas: Int, let rules: Int>(_ p: SAParameters, key: KeyBytes, plane: inout DataPlane<sas, rules>) -> Bool {
        key.withBytes { (k: UnsafeRawBufferPointer) -> Bool in
            do throws(SAError) {
                try plane.sas.install(p, key: UnsafeRawBufferPointer(rebasing: k[0..<p.keyLength]))
                return true
            } catch {
                return false
            }
        }
    }
}
