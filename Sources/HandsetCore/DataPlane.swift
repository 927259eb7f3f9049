public enum SealResult: Equatable, Sendable {
    /// `out[0..<length]` is the ESP packet: send it as the UDP payload to `peer:port` (ESP-in-UDP, RFC 3948).
    case packet(length: Int, peer: IPAddress, port: UInt16)
    /// Policy says bypass: send the payload in clear.
    case bypass
    /// Policy says protect and no SA covers the selector: ask the proxy for one (key request).
    case needsKey(rule: Int, template: UInt16)
    case discard
    case failed(ESPError)
}

public enum OpenResult: Equatable, Sendable {
    /// A decrypted datagram; its payload is `out[payload]`.
    case datagram(TrafficSelector, payload: Range<Int>)
    /// The RFC 3948 NAT-keepalive byte.
    case keepalive
    /// Starts with the 4-byte non-ESP marker (IKE): not for the handset, which never runs IKE.
    case nonESP
    /// Next header 59: a dummy (TFC) packet, authenticated and then dropped.
    case dummy
}

/// Datagrams the data plane refused that no single SA can be blamed for.
public struct DataPlaneCounters: Equatable, Sendable {
    public var unknownSPI: UInt64 = 0
    public var truncated: UInt64 = 0
    public var malformed: UInt64 = 0
    public var badInner: UInt64 = 0
    public var policyMismatch: UInt64 = 0
    public var nonESP: UInt64 = 0
    public var keepalives: UInt64 = 0
    public var dummies: UInt64 = 0
    public var discarded: UInt64 = 0
    public var needsKey: UInt64 = 0
    public var clearRefused: UInt64 = 0
    public init() {}
}

/// SPD + SA table + ESP framing: the handset's whole per-packet path. No heap is touched here.
public struct DataPlane<let saCapacity: Int, let spdCapacity: Int>: ~Copyable {
    public var spd: SPD<spdCapacity>
    public var sas: SATable<saCapacity>
    public private(set) var counters = DataPlaneCounters()
    /// SPI of the last packet `open` accepted: peers use it to learn the sender's endpoint (RFC 3948 NAT-T).
    public private(set) var lastInboundSPI: UInt32 = 0

    public init(defaultAction: PolicyAction = .discard) {
        spd = SPD(defaultAction: defaultAction)
        sas = SATable()
    }

    /// Protects one outbound datagram. Nothing matching a protect rule ever leaves in clear: without an SA
    /// the answer is `needsKey`, never `bypass`.
    public mutating func seal(_ payload: UnsafeRawBufferPointer, selector s: TrafficSelector,
                              into out: UnsafeMutableRawBufferPointer) -> SealResult {
        let (rule, action) = spd.lookup(s)
        switch action {
        case .bypass: return .bypass
        case .discard: counters.discarded &+= 1; return .discard
        case .protect(let template):
            guard let i = sas.outboundSlot(for: s) else {
                counters.needsKey &+= 1
                return .needsKey(rule: rule ?? -1, template: template)
            }
            let p = sas.slots[i].params
            let espHeader = ESPFormat.headerLength(p)
            let inner = InnerPacket.headerLength(mode: p.mode, remote: s.remote)
            let plain = inner + payload.count
            guard out.count >= ESPFormat.wireLength(p, payload: plain) else { return .failed(.bufferTooSmall) }
            if payload.count > 0 {
                (out.baseAddress! + espHeader + inner).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            }
            let next = InnerPacket.writeHeaders(out, at: espHeader, mode: p.mode, s: s, payloadLength: payload.count,
                                                ident: UInt16(truncatingIfNeeded: sas.slots[i].state.seq &+ 1))
            do {
                let n = try sas.sealInPlace(slot: i, payloadLength: plain, nextHeader: next, into: out)
                return .packet(length: n, peer: p.peer, port: p.peerPort)
            } catch {
                return .failed(error)
            }
        }
    }

    /// Demultiplexes one datagram from the ESP-in-UDP socket (RFC 3948 §2.2) and opens it.
    public mutating func open(_ udpPayload: UnsafeRawBufferPointer,
                              into out: UnsafeMutableRawBufferPointer) throws(ESPError) -> OpenResult {
        if udpPayload.count == 1 && udpPayload[0] == 0xFF {
            counters.keepalives &+= 1
            return .keepalive
        }
        if udpPayload.count >= 4 && udpPayload.be32(0) == 0 {
            counters.nonESP &+= 1
            return .nonESP
        }
        let opened: InboundESP
        do {
            opened = try sas.verify(udpPayload, into: out)
        } catch {
            switch error {
            case .unknownSPI: counters.unknownSPI &+= 1
            case .truncated: counters.truncated &+= 1
            case .malformed: counters.malformed &+= 1
            default: break  // counted on the SA
            }
            throw error
        }
        if opened.nextHeader == IPProto.noNext {
            sas.accept(opened)
            lastInboundSPI = sas.slots[opened.slot].params.spi
            counters.dummies &+= 1
            return .dummy
        }
        let p = sas.slots[opened.slot].params
        guard let inner = InnerPacket.parse(out.readOnly, length: opened.length, nextHeader: opened.nextHeader,
                                            local: p.local, peer: p.peer) else {
            counters.badInner &+= 1
            throw .badInnerPacket
        }
        // RFC 4301 §5.2: what came out of the SA must be what the SA and the SPD allow in.
        var sel = inner.selector
        if case .transport = p.mode { sel.local = p.local }
        guard sel.local == p.local, p.selector.covers(sel), case .protect = spd.lookup(sel).action else {
            sas.slots[opened.slot].state.counters.policyMismatches &+= 1
            counters.policyMismatch &+= 1
            throw .policyMismatch
        }
        sas.accept(opened)
        lastInboundSPI = p.spi
        return .datagram(sel, payload: inner.payload)
    }

    /// May a datagram that arrived in clear be delivered? Only if policy says bypass for it.
    public mutating func admitsClear(_ s: TrafficSelector) -> Bool {
        if case .bypass = spd.lookup(s).action { return true }
        counters.clearRefused &+= 1
        return false
    }
}
