import Foundation
import HandsetCore
import ProxyIKE

/// Loading a device into the proxy charon, and turning key records into sa-transfers.
extension StrongSwanNegotiator {
    /// Loads the device's credentials (PSK, or private key over VICI: never on disk) and its connection (with
    /// `adding` among its children). Nil when loaded.
    func load(device: UInt64, adding: (name: String, selector: TrafficSelector)?) -> NegotiationFailure? {
        let found: Credentials?
        do { found = try credentials(device) } catch {
            log.error("registry lookup for the device's credentials failed", metadata: ["device": "\(device)", "error": "\(error)"])
            return .refused("registry: \(error)")
        }
        guard var creds = found else {
            log.notice("no IKE identity, PSK or certificate provisioned", metadata: ["device": "\(device)"])
            return .authenticationFailed
        }
        defer { creds.wipe() }
        let conn = Self.connectionName(device)
        let kids = lock.withLock { () -> [String: TrafficSelector] in
            if let (name, s) = adding { children[device, default: [:]][name] = s }
            return children[device] ?? [:]
        }
        do {
            let vici = try VICIClient(path: config.viciSocket)
            defer { vici.close() }
            // The messages die at the end of their block, before `creds.wipe()`, so the key's buffer is wiped in
            // place rather than copied; VICIClient wipes the framed copy it sends.
            if creds.usesCertificate, let key = creds.privateKey {
                var k = VICIMessage()
                k.add("type", "any")
                k.add("data", bytes: key)
                try Self.expectSuccess(try vici.call("load-key", k, timeout: 5), "load-key")
            } else {
                var shared = VICIMessage()
                shared.add("id", conn)
                shared.add("type", "IKE")
                shared.add("data", bytes: creds.psk)
                shared.add("owners", list: [creds.identity, config.serverID])
                try Self.expectSuccess(try vici.call("load-shared", shared, timeout: 5), "load-shared")
            }
            let m = connection(conn, credentials: creds, children: kids)
            try Self.expectSuccess(try vici.call("load-conn", m, timeout: 5), "load-conn")
        } catch let e as VICIError {
            log.error("cannot load the device into charon", metadata: ["device": "\(device)", "error": "\(e)"])
            return .refused("IKE engine: \(e)")
        } catch {
            log.error("charon refused the device", metadata: ["device": "\(device)", "error": "\(error)"])
            return .refused("IKE engine: \(error)")
        }
        return nil
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    static func expectSuccess(_ r: VICIMessage, _ what: String) throws {
        guard r.string("success") == "yes" else { throw CommandFailed(description: "\(what): \(r.string("errmsg") ?? "failed")") }
    }

    /// The connection as IKE-SHARED.md lays it out. A child per flow asked for, plus the device's default child
    /// (its inner address to anything the server narrows it to) so the server may initiate.
    /// The device authenticates with its certificate or PSK; the server with a certificate chaining to
    /// `serverCAs` when some are configured, else with the PSK.
    func connection(_ name: String, credentials creds: Credentials, children kids: [String: TrafficSelector]) -> VICIMessage {
        let inner = creds.innerAddress
        var local = VICIMessage()
        local.add("auth", creds.usesCertificate ? "pubkey" : "psk")
        local.add("id", creds.identity)
        if creds.usesCertificate, let cert = creds.certificate { local.add("certs", listOfBytes: [cert]) }
        var remote = VICIMessage()
        remote.add("auth", config.serverCAs.isEmpty ? "psk" : "pubkey")
        remote.add("id", config.serverID)
        if !config.serverCAs.isEmpty { remote.add("cacerts", listOfBytes: config.serverCAs) }
        var children = VICIMessage()
        func child(_ localTS: String, _ remoteTS: String) -> VICIMessage {
            var c = VICIMessage()
            c.add("local_ts", list: [localTS])
            c.add("remote_ts", list: [remoteTS])
            c.add("esp_proposals", list: config.espProposals.split(separator: ",").map(String.init))
            c.add("mode", "tunnel")
            c.add("rekey_time", "\(config.rekeyTime)s")
            c.add("start_action", "none")
            return c
        }
        if let inner { children.add(name, section: child("\(inner.dottedQuad)/32", "0.0.0.0/0")) }
        for (n, s) in kids.sorted(by: { $0.key < $1.key }) {
            // With a virtual IP, charon puts the address the server assigns in place of `dynamic`.
            let local = config.virtualIP ? Self.dynamicTS(s.proto, s.localPort) : Self.ts(s.local, 32, s.proto, s.localPort)
            children.add(n, section: child(local, Self.ts(s.remote, 32, s.proto, s.remotePort)))
        }
        var c = VICIMessage()
        c.add("version", "2")
        c.add("remote_addrs", list: [config.ikeRemoteAddress])
        c.add("remote_port", "\(config.ikeRemotePort)")
        if config.ikeLocalPort != 0 { c.add("local_port", "\(config.ikeLocalPort)") }
        if config.virtualIP { c.add("vips", list: ["0.0.0.0"]) }
        c.add("proposals", list: config.proposals.split(separator: ",").map(String.init))
        c.add("keyingtries", "1")
        c.add("local", section: local)
        c.add("remote", section: remote)
        c.add("children", section: children)
        var m = VICIMessage()
        m.add(name, section: c)
        return m
    }

    /// swanctl.conf traffic selector syntax: `addr/prefix[proto/port]`.
    static func ts(_ a: IPAddress, _ prefix: Int, _ proto: UInt8, _ port: UInt16) -> String {
        let base = "\(a.dottedQuad)/\(prefix)"
        guard proto != IPProto.any else { return base }
        return port == 0 ? "\(base)[\(proto)]" : "\(base)[\(proto)/\(port)]"
    }

    /// `dynamic[proto/port]`: the IKE address, or the virtual IP once assigned.
    static func dynamicTS(_ proto: UInt8, _ port: UInt16) -> String {
        guard proto != IPProto.any else { return "dynamic" }
        return port == 0 ? "dynamic[\(proto)]" : "dynamic[\(proto)/\(port)]"
    }

    /// With `virtualIP`, the address the server's pool assigned: the record's first `local_ts`, which must be one
    /// usable IPv4 address (a /32). It becomes the handset's inner address (the gateway binds it to the device).
    /// Nil without `virtualIP`.
    /// A transport-mode record is refused too: its selectors are the IKE endpoints, so the handset's end would be
    /// its public address, and binding that as an inner address would hand the packet gateway's address to a device.
    func virtualIP(of r: KeyRecord, device: UInt64) -> Result<IPAddress?, NegotiationFailure> {
        guard config.virtualIP else { return .success(nil) }
        guard r.tunnel else {
            lock.withLock { tally.transportWithVirtualIP += 1 }
            log.error("a transport-mode CHILD_SA cannot carry a virtual IP", metadata: ["device": "\(device)"])
            return .failure(.refused("transport mode with a virtual IP"))
        }
        let ts = r.localTS.first?.split(separator: " ").first.map(String.init) ?? ""
        let parts = ts.split(separator: "/")
        if parts.count == 2, parts[1] == "32", let a = IPAddress(dottedQuad: String(parts[0])), a.isUsableInnerAddress {
            return .success(a)
        }
        lock.withLock { tally.virtualIPRefused += 1 }
        log.error("the server's virtual IP is not one usable address", metadata: ["device": "\(device)", "assigned": "\(ts)"])
        return .failure(.refused("virtual IP \(ts) is not one usable IPv4 address"))
    }

    // MARK: key records

    /// A record from the plugin: the answer a negotiation waits for, or something the peer did on its own.
    func handle(_ record: KeyRecord) {
        guard let device = Self.device(ofConnection: record.ikeName) else {
            lock.withLock { tally.unknownConnection += 1 }
            return
        }
        if record.event != .down { keylogTap?(record) }
        if record.event == .down {
            let withheld = lock.withLock { () -> Bool in
                guard self.withheld.remove(record.spiOut) == nil else { tally.deletesWithheld += 1; return true }
                tally.peerDeletes += 1
                return false
            }
            if !withheld { onPeerDelete?(device, record.spiOut, record.spiIn) }
            return
        }
        if record.initiator, let w = lock.withLock({ waiting.removeValue(forKey: record.childName) }) {
            w.fulfil(record)
            return
        }
        // Server-initiated, or a rekey: pushed with request 0. A virtual IP the handset cannot hold ends the IKE_SA,
        // as for the proxy's own negotiations: the server would otherwise keep an SA nobody uses.
        guard case .success(let vip) = virtualIP(of: record, device: device) else {
            withhold(record.spiOut)
            abandon(device)
            return
        }
        switch transfer(from: record, selector: nil) {
        case .success(var t):
            t.handset = vip
            lock.withLock { tally.peerTransfers += 1 }
            onPeerTransfer?(device, t)
        case .failure(let f):
            lock.withLock { tally.unmappable += 1 }
            log.error("peer's SA cannot go to the handset", metadata: ["device": "\(device)", "why": "\(f)"])
        }
    }

    /// The handset's half. `selector` is the flow asked for; nil takes the flow from the record's selectors.
    func transfer(from r: KeyRecord, selector: TrafficSelector?) -> Result<KDSATransfer, NegotiationFailure> {
        let algorithm: ESPAlgorithm = r.encryption == .chacha20poly1305 ? .chacha20Poly1305 : .aesGCM
        let n = r.encryption.keyLength
        guard r.keyIn.count == n + 4, r.keyOut.count == n + 4 else { return .failure(.refused("key length")) }
        guard let flow = selector ?? Self.flow(local: r.localTS.first, remote: r.remoteTS.first) else {
            return .failure(.refused("selectors the handset cannot hold"))
        }
        func salt(_ k: [UInt8]) -> UInt32 { k[n..<(n + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        let t = r.keyOut.withUnsafeBytes { o in
            r.keyIn.withUnsafeBytes { i in
                KDSATransfer(requestID: 0, algorithm: algorithm, keyLength: n, tunnel: r.tunnel, esn: r.esn,
                             outboundSPI: r.spiOut, outboundKey: KeyBytes(UnsafeRawBufferPointer(rebasing: o[0..<n])),
                             outboundSalt: salt(r.keyOut),
                             inboundSPI: r.spiIn, inboundKey: KeyBytes(UnsafeRawBufferPointer(rebasing: i[0..<n])),
                             inboundSalt: salt(r.keyIn), peer: config.serverAddress, peerPort: config.serverESPPort,
                             prefix: 32, proto: flow.proto, localPort: flow.localPort, remotePort: flow.remotePort,
                             softSeconds: r.softSeconds, hardSeconds: r.hardSeconds,
                             remote: r.tunnel && flow.remote != config.serverAddress ? flow.remote : nil)
            }
        }
        return .success(t)
    }

    /// A flow from the record's first selectors (`cidr[ proto/port]`); ports 0 when a range.
    static func flow(local: String?, remote: String?) -> TrafficSelector? {
        func parse(_ s: String?) -> (IPAddress, UInt8, UInt16)? {
            guard let s else { return nil }
            let parts = s.split(separator: " ")
            guard let cidr = parts.first, let a = IPAddress(dottedQuad: String(cidr.split(separator: "/")[0])) else { return nil }
            guard parts.count > 1 else { return (a, IPProto.any, 0) }
            let pp = parts[1].split(separator: "/")
            let names: [Substring: UInt8] = ["udp": IPProto.udp, "tcp": 6, "icmp": 1]
            guard let proto = names[pp[0]] ?? UInt8(pp[0]) else { return nil }
            return (a, proto, pp.count > 1 ? UInt16(pp[1]) ?? 0 : 0)
        }
        guard let l = parse(local), let r = parse(remote) else { return nil }
        return TrafficSelector(local: l.0, remote: r.0, proto: r.1 == IPProto.any ? l.1 : r.1, localPort: l.2, remotePort: r.2)
    }
}
