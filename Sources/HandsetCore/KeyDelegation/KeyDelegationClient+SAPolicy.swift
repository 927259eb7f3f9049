/// What a transferred SA pair may cover (docs/key-delegation.md §6). The gateway is trusted to deliver keys,
/// not to widen policy: an answer covers at most the flow the handset asked for, a push at most one protect
/// rule, and pushes from one peer hold at most `pushedPairsPerPeer` pairs.
extension KeyDelegationClient {
    public static var pushedPairsPerPeer: Int { 4 }

    /// `.ok`, or the sa-ack status of a refusal (counted). Nothing is installed or changed on a refusal.
    mutating func admit<let sas: Int, let rules: Int>(_ t: KDSATransfer, plane: inout DataPlane<sas, rules>) -> KDStatus {
        // The module's sockets and the firmware's endpoints are IPv4: a v6 peer would be sent to its low 32 bits.
        guard !t.peer.isV6 else { counters.saIPv6Refused &+= 1; return .denied }
        let pattern = t.selectorPattern
        if let i = pendingRequest(id: t.requestID) {
            guard pattern.isWithin(request: requests[i].selector) else { counters.saOutsidePolicy &+= 1; return .denied }
            return .ok
        }
        // A push, or the answer to a request no longer pending (a late duplicate): held to the SPD.
        guard plane.spd.hasProtectRule(covering: pattern) else { counters.saOutsidePolicy &+= 1; return .denied }
        guard makeRoomForPush(t, pattern: pattern, plane: &plane) else { counters.saPeerLimit &+= 1; return .busy }
        return .ok
    }

    func pendingRequest(id: UInt16) -> Int? {
        guard id != 0 else { return nil }
        for i in 0..<8 where requests[i].used && requests[i].id == id { return i }
        return nil
    }

    /// True when a pushed pair from `t.peer` may be added. At the cap, a push for exactly the flow of an older
    /// pushed pair from that peer supersedes it (the oldest such pair is deleted): re-pushing a flow is normal,
    /// pushing ever more flows is not.
    mutating func makeRoomForPush<let sas: Int, let rules: Int>(_ t: KDSATransfer, pattern: SelectorPattern,
                                                                plane: inout DataPlane<sas, rules>) -> Bool {
        var fromPeer = 0, free = false
        var oldestSameFlow = -1
        for i in 0..<8 {
            let spi = pushedPairs[i].outboundSPI
            guard spi != 0, let p = plane.sas.snapshot(spi: spi, direction: .outbound)?.params else {
                pushedPairs[i] = PushedPair()  // free, or expired or deleted since
                free = true
                continue
            }
            guard p.peer == t.peer else { continue }
            fromPeer += 1
            if oldestSameFlow < 0, p.selector == pattern { oldestSameFlow = i }
        }
        if fromPeer < Self.pushedPairsPerPeer && free { return true }
        guard oldestSameFlow >= 0 else { return false }
        let old = pushedPairs[oldestSameFlow]
        if (try? plane.sas.delete(spi: old.outboundSPI, direction: .outbound)) != nil { counters.sasDeleted &+= 1 }
        if (try? plane.sas.delete(spi: old.inboundSPI, direction: .inbound)) != nil { counters.sasDeleted &+= 1 }
        pushedPairs[oldestSameFlow] = PushedPair()
        return true
    }

    mutating func notePushed(_ t: KDSATransfer) {
        for i in 0..<8 where pushedPairs[i].outboundSPI == 0 {
            pushedPairs[i] = PushedPair(outboundSPI: t.outboundSPI, inboundSPI: t.inboundSPI)
            return
        }
    }
}

extension KDSATransfer {
    /// The traffic the pair covers, from the handset's side (0 = any port).
    var selectorPattern: SelectorPattern {
        SelectorPattern(remote: remote ?? peer, prefix: Int(prefix), proto: proto,
                        localPorts: localPort == 0 ? .any : PortRange(localPort),
                        remotePorts: remotePort == 0 ? .any : PortRange(remotePort))
    }
}

extension SelectorPattern {
    /// Within the one flow a key request names: that remote host, its protocol (0 = any) and ports (0 = any).
    func isWithin(request s: TrafficSelector) -> Bool {
        remotePrefix == s.remote.bitWidth && remote.matches(s.remote, prefix: remotePrefix)
            && (s.proto == IPProto.any || proto == s.proto)
            && (s.localPort == 0 || localPorts == PortRange(s.localPort))
            && (s.remotePort == 0 || remotePorts == PortRange(s.remotePort))
    }

    /// Every selector `inner` covers, `self` covers too.
    func contains(_ inner: SelectorPattern) -> Bool {
        remotePrefix <= inner.remotePrefix && remote.matches(inner.remote, prefix: remotePrefix)
            && (proto == IPProto.any || proto == inner.proto)
            && localPorts.low <= inner.localPorts.low && inner.localPorts.high <= localPorts.high
            && remotePorts.low <= inner.remotePorts.low && inner.remotePorts.high <= remotePorts.high
    }
}

extension SPD {
    /// True when one `protect` rule (not a secret one: the data plane never carries that) covers all of `p`.
    func hasProtectRule(covering p: SelectorPattern) -> Bool {
        for i in 0..<count {
            let r = self[i]
            guard case .protect = r.action, !r.secret else { continue }
            if r.pattern.contains(p) { return true }
        }
        return false
    }
}
