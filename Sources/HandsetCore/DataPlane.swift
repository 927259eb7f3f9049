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
    private var policies: SPD<spdCapacity>
    private var table: SATable<saCapacity>
    private var flows = FlowCache()
    public private(set) var counters = DataPlaneCounters()
    /// SPI of the last packet `open` accepted: peers use it to learn the sender's endpoint (RFC 3948 NAT-T).
    public private(set) var lastInboundSPI: UInt32 = 0

    /// Any change made from outside drops the flow cache; the table's own changes are caught by `SATable.version`.
    public var spd: SPD<spdCapacity> {
        _read { yield policies }
        _modify { flows = FlowCache(); yield &policies }
    }
    public var sas: SATable<saCapacity> {
        _read { yield table }
        _modify { flows = FlowCache(); yield &table }
    }

    public init(defaultAction: PolicyAction = .discard) {
        policies = SPD(defaultAction: defaultAction)
        table = SATable()
    }

    /// Protects one outbound datagram. Nothing matching a protect rule ever leaves in clear: without an SA
    /// the answer is `needsKey`, never `bypass`.
    public mutating func seal(_ payload: UnsafeRawBufferPointer, selector s: TrafficSelector,
                              into out: UnsafeMutableRawBufferPointer) -> SealResult {
        let i: Int
        if let hit = flows.outboundSlot(for: s, version: table.version) {
            i = hit
        } else {
            let (rule, action) = policies.lookup(s)
            switch action {
            case .bypass: return .bypass
            case .discard: counters.discarded &+= 1; return .discard
            case .protect(let template):
                guard let found = table.outboundSlot(for: s) else {
                    counters.needsKey &+= 1
                    return .needsKey(rule: rule ?? -1, template: template)
                }
                flows.rememberOutbound(s, slot: found, version: table.version)
                i = found
            }
        }
        let mode = table.slots[i].params.mode
        // A tunnel SA carries its own inner address only: never a datagram from another (an address the gateway has
        // since replaced, say), which the peer would drop or, worse, deliver as someone else's.
        if case .tunnel = mode, s.local != table.slots[i].params.local {
            counters.policyMismatch &+= 1
            return .discard
        }
        let espHeader = ESPFormat.headerLength(table.slots[i].params)
        let inner = InnerPacket.headerLength(mode: mode, remote: s.remote)
        let plain = inner + payload.count
        guard out.count >= ESPFormat.wireLength(table.slots[i].params, payload: plain) else { return .failed(.bufferTooSmall) }
        let payloadSum = InnerPacket.copyPayload(payload, to: out, at: espHeader + inner)
        let next = InnerPacket.writeHeaders(out, at: espHeader, mode: mode, s: s, payloadLength: payload.count,
                                            payloadSum: payloadSum,
                                            ident: UInt16(truncatingIfNeeded: table.slots[i].state.seq &+ 1))
        let peer = table.slots[i].params.peer, port = table.slots[i].params.peerPort
        do {
            let n = try table.sealInPlace(slot: i, payloadLength: plain, nextHeader: next, into: out)
            return .packet(length: n, peer: peer, port: port)
        } catch {
            return .failed(error)
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
            opened = try table.verify(udpPayload, into: out)
        } catch {
            switch error {
            case .unknownSPI: counters.unknownSPI &+= 1
            case .truncated: counters.truncated &+= 1
            case .malformed: counters.malformed &+= 1
            default: break  // counted on the SA
            }
            throw error
        }
        let i = opened.slot
        if opened.nextHeader == IPProto.noNext {
            table.accept(opened)
            lastInboundSPI = table.slots[i].params.spi
            counters.dummies &+= 1
            return .dummy
        }
        let local = table.slots[i].params.local
        guard let inner = InnerPacket.parse(out.readOnly, length: opened.length, nextHeader: opened.nextHeader,
                                            local: local, peer: table.slots[i].params.peer) else {
            counters.badInner &+= 1
            throw .badInnerPacket
        }
        // RFC 4301 §5.2: what came out of the SA must be what the SA and the SPD allow in.
        var sel = inner.selector
        if case .transport = table.slots[i].params.mode { sel.local = local }
        if !flows.admitsInbound(sel, slot: i, version: table.version) {
            guard sel.local == local, table.slots[i].params.selector.covers(sel), case .protect = policies.lookup(sel).action
            else {
                table.slots[i].state.counters.policyMismatches &+= 1
                counters.policyMismatch &+= 1
                throw .policyMismatch
            }
            flows.rememberInbound(sel, slot: i, version: table.version)
        }
        let spi = table.slots[i].params.spi
        table.accept(opened)
        lastInboundSPI = spi
        return .datagram(sel, payload: inner.payload)
    }

    /// May a datagram that arrived in clear be delivered? Only if policy says bypass for it.
    public mutating func admitsClear(_ s: TrafficSelector) -> Bool {
        if case .bypass = policies.lookup(s).action { return true }
        counters.clearRefused &+= 1
        return false
    }
}

/// One-entry caches in front of the SPD and the SA choice: a handset mostly carries one flow at a time. An entry holds
/// only while the SA table's `version` is the one it was made under (installs, replaces, deletes and soft expiry move
/// it); the SPD can change only through `DataPlane.spd`, which empties the cache.
struct FlowCache {
    private var outSelector: TrafficSelector? = nil
    private var outSlot = 0
    private var outVersion: UInt64 = 0
    private var inSelector: TrafficSelector? = nil
    private var inSlot = 0
    private var inVersion: UInt64 = 0

    /// The outbound SA last chosen for `s`, if nothing that could change the choice happened since.
    @inline(__always) func outboundSlot(for s: TrafficSelector, version: UInt64) -> Int? {
        outSelector == s && outVersion == version ? outSlot : nil
    }
    @inline(__always) mutating func rememberOutbound(_ s: TrafficSelector, slot: Int, version: UInt64) {
        outSelector = s; outSlot = slot; outVersion = version
    }
    /// True when `s` arriving on `slot` already passed the inbound policy check under the same table and SPD.
    @inline(__always) func admitsInbound(_ s: TrafficSelector, slot: Int, version: UInt64) -> Bool {
        inSelector == s && inSlot == slot && inVersion == version
    }
    @inline(__always) mutating func rememberInbound(_ s: TrafficSelector, slot: Int, version: UInt64) {
        inSelector = s; inSlot = slot; inVersion = version
    }
}
