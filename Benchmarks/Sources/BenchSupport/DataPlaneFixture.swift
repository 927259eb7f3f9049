import HandsetCore

/// A handset and its peer with mirrored SAs (transport mode, UDP), as the gateway would install them.
/// The handset seals with DataPlane.seal; the peer opens the same packets with DataPlane.open.
public final class DataPlaneFixture: @unchecked Sendable {
    public let payloadLength: Int
    /// Behind pointers for the reason given at ESPFixture.tablePointer.
    let handsetPointer = UnsafeMutablePointer<DataPlane<4, 4>>.allocate(capacity: 1)
    let peerPointer = UnsafeMutablePointer<DataPlane<4, 4>>.allocate(capacity: 1)
    var handset: DataPlane<4, 4> {
        _read { yield handsetPointer.pointee }
        _modify { yield &handsetPointer.pointee }
    }
    var peer: DataPlane<4, 4> {
        _read { yield peerPointer.pointee }
        _modify { yield &peerPointer.pointee }
    }
    let selector: TrafficSelector
    let payload: UnsafeMutableRawBufferPointer
    let wire = allocateBuffer(slotBytes)
    let plain = allocateBuffer(slotBytes)
    let ring = allocateBuffer(ringSize * slotBytes)
    var ringLength = 0
    var next = 0
    let peerInSlot: Int

    public init(_ alg: BenchAlgorithm, payload n: Int) {
        payloadLength = n
        payload = allocateBuffer(n)
        for k in 0..<n { payload[k] = UInt8(truncatingIfNeeded: k &* 7) }
        let h = IPAddress(10, 0, 0, 2), g = IPAddress(192, 0, 2, 1)
        selector = TrafficSelector(local: h, remote: g, localPort: 5000, remotePort: 7)
        let key = (0..<alg.keyLength).map { UInt8($0 &+ 0x40) }
        func params(_ dir: SADirection, local: IPAddress, remote: IPAddress) -> SAParameters {
            SAParameters(spi: spi, direction: dir, algorithm: alg.algorithm, keyLength: alg.keyLength, salt: salt,
                         local: local, selector: SelectorPattern(remote: remote, prefix: 32, proto: IPProto.udp),
                         peer: remote)
        }
        var hs = DataPlane<4, 4>(), pr = DataPlane<4, 4>()
        try! hs.spd.append(SPDRule(SelectorPattern(remote: g, prefix: 32), .protect(template: 1)))
        try! pr.spd.append(SPDRule(SelectorPattern(remote: h, prefix: 32), .protect(template: 1)))
        key.withUnsafeBytes { _ = try! hs.sas.install(params(.outbound, local: h, remote: g), key: $0) }
        peerInSlot = key.withUnsafeBytes { try! pr.sas.install(params(.inbound, local: g, remote: h), key: $0) }
        handsetPointer.initialize(to: hs)
        peerPointer.initialize(to: pr)

        for r in 0..<ringSize {
            let slot = UnsafeMutableRawBufferPointer(rebasing: ring[(r * slotBytes)..<((r + 1) * slotBytes)])
            guard case .packet(let len, _, _) = handset.seal(UnsafeRawBufferPointer(payload), selector: selector, into: slot)
            else { preconditionFailure("DataPlane fixture: seal did not produce a packet") }
            ringLength = len
        }
        for _ in 0..<(2 * ringSize) { precondition(open() == n) }
    }

    /// DataPlane.seal: SPD lookup, outbound SA by selector, inner UDP header and checksum, ESP.
    @inline(__always) public func seal() -> Int {
        guard case .packet(let len, _, _) = handset.seal(UnsafeRawBufferPointer(payload), selector: selector, into: wire)
        else { return -1 }
        return len
    }

    /// DataPlane.open of the next ring packet: demux, ESP open, inner header parse, policy check.
    @inline(__always) public func open() -> Int {
        if next == 0 { peer.sas.primeSequence(slot: peerInSlot, next: 0) }  // once per ring pass
        let pkt = UnsafeRawBufferPointer(start: ring.baseAddress! + next * slotBytes, count: ringLength)
        next = next == ringSize - 1 ? 0 : next + 1
        guard case .datagram(_, let range) = try! peer.open(pkt, into: plain) else { return -1 }
        return range.count
    }
}
