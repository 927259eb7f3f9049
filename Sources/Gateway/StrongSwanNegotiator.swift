import Foundation
import HandsetCore
import Logging
import ProxyIKE

/// The gateway's IKE engine: a proxy charon driven over VICI, negotiating as each device with a real IPsec server.
/// Keys come from our charon plugin's key socket (`KeyRecordReader`), never over VICI.
/// Each device is one connection `hs-<16 hex id>` with its own identity and PSK (IKE-SHARED.md, "Proxy connection
/// per device"); each flow the handset asks for is one child of it, so a second flow is a CREATE_CHILD_SA on the
/// existing IKE_SA.
public final class StrongSwanNegotiator: PeerNegotiator, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var viciSocket: String
        public var keySocket: String
        /// The uid the key socket's listener (charon) must run as.
        public var trustedUID: UInt32 = 0
        /// The server's public address and ESP port: where the handset sends its ESP.
        public var serverAddress: IPAddress
        public var serverESPPort: UInt16 = 4500
        /// Where the proxy sends IKE: the packet gateway's relay endpoint, or the server itself.
        public var ikeRemoteAddress: String
        public var ikeRemotePort: UInt16 = 4500
        /// The proxy charon's NAT-T port (its `port_nat_t`): IKE leaves from it with the non-ESP marker, which is
        /// what the packet gateway's relay expects. 0: charon's choice (its IKE port, floating later).
        public var ikeLocalPort: UInt16 = 0
        public var serverID: String
        /// CA certificates (PEM or DER) the server's certificate must chain to. Non-empty: the proxy authenticates
        /// the server by its certificate (`auth = pubkey`, `cacerts`); empty: by the device's PSK.
        public var serverCAs: [[UInt8]] = []
        public var proposals = "aes256-sha256-x25519"
        /// What sa-transfer can carry today: 256-bit keys (AES-256-GCM, ChaCha20-Poly1305).
        public var espProposals = "aes256gcm16,aes128gcm16,chacha20poly1305"
        /// Ask the server for a virtual IP from its pool (`vips = 0.0.0.0`; a server whose connection has `pools`
        /// requires it). The address it assigns (the record's `local_ts`) becomes the handset's inner address: each
        /// transfer names it, and the gateway binds it to the device (docs/ike-proxy.md, "Virtual IP").
        public var virtualIP = false
        /// The proxy's CHILD_SA `rekey_time` (seconds; charon rekeys up to 10% earlier, its default `rand_time`).
        /// Keep it below the server's (minus the server's `rand_time`) so the proxy initiates the rekey: then its
        /// DELETE waits for the handset (`hold_rekey`) and nothing is lost, whereas a server-initiated rekey loses
        /// the replies sent inside the SMS window (docs/ike-proxy.md). 45 min: below a stock server's default 1 h,
        /// which charon starts up to 6 min early.
        public var rekeyTime: UInt32 = Self.defaultRekeyTime
        public static let defaultRekeyTime: UInt32 = 2700
        /// Bound on one negotiation, IKE_SA_INIT to the key record.
        public var timeout: Double = 5
        /// Negotiations in flight at once; more wait (at most `timeout`) for a slot, then fail as `refused` (counted
        /// as `busy`). charon's VICI `initiate` holds one of its worker threads (`charon.threads`, 16 by default)
        /// until the CHILD_SA is up, and IKE itself needs free ones: keep it well below `charon.threads`.
        /// StrongSwanNegotiatorCostTests measures it (BENCHMARKS.md).
        public var maxConcurrent = 8

        public init(viciSocket: String, keySocket: String, serverAddress: IPAddress, ikeRemoteAddress: String,
                    serverID: String) {
            self.viciSocket = viciSocket
            self.keySocket = keySocket
            self.serverAddress = serverAddress
            self.ikeRemoteAddress = ikeRemoteAddress
            self.serverID = serverID
        }
    }

    /// How the proxy authenticates as one device: its PSK, or its X.509 certificate and private key (both PEM or
    /// DER). The private key goes to charon over VICI (`load-key`) and is never written to disk.
    public struct Credentials: Sendable {
        public var identity: String
        public var psk: [UInt8]
        public var certificate: [UInt8]?
        public var privateKey: [UInt8]?
        public var innerAddress: IPAddress?
        public init(identity: String, psk: [UInt8], innerAddress: IPAddress?) {
            self.identity = identity; self.psk = psk; self.innerAddress = innerAddress
        }
        public init(identity: String, certificate: [UInt8], privateKey: [UInt8], innerAddress: IPAddress?) {
            self.identity = identity; psk = []; self.certificate = certificate; self.privateKey = privateKey
            self.innerAddress = innerAddress
        }

        /// A registry row's credentials: the certificate when it has one (with its key), else the PSK; nil: none.
        public init?(record d: DeviceRecord) {
            guard let identity = d.ikeIdentity else { return nil }
            if let cert = d.ikeCertificate, let key = d.ikePrivateKey {
                self.init(identity: identity, certificate: Array(cert), privateKey: Array(key), innerAddress: d.innerAddress)
            } else if let psk = d.ikePSK {
                self.init(identity: identity, psk: Array(psk), innerAddress: d.innerAddress)
            } else {
                return nil
            }
        }

        var usesCertificate: Bool { certificate != nil && privateKey != nil }

        mutating func wipe() {
            for i in psk.indices { psk[i] = 0 }
            if privateKey != nil { for i in privateKey!.indices { privateKey![i] = 0 } }
        }
    }

    public struct Counters: Equatable, Sendable {
        public var established = 0, failed = 0, peerTransfers = 0, peerDeletes = 0, unknownConnection = 0
        public var unmappable = 0
        /// Negotiations refused because `maxConcurrent` were in flight for the whole `timeout`.
        public var busy = 0
        /// Transfers refused because the server's virtual IP was not one usable IPv4 address.
        public var virtualIPRefused = 0
        /// Transfers refused because the CHILD_SA is in transport mode while the proxy asks for a virtual IP: a
        /// transport SA's end is the handset's public address, never an address from the server's pool.
        public var transportWithVirtualIP = 0
        /// CHILD_SAs that went down without an sa-delete, since the handset never had them (refused, then closed).
        public var deletesWithheld = 0
        public init() {}
    }

    public let config: Configuration
    /// Nil: none provisioned; a throw: the registry could not be asked (down, or called from an event loop).
    let credentials: @Sendable (UInt64) throws -> Credentials?
    let log: Logger
    let lock = NSLock()
    var reader: KeyRecordReader?
    /// Per device: its children by name, with the flow each covers.
    var children: [UInt64: [String: TrafficSelector]] = [:]
    /// Negotiations waiting for their key record, by child name.
    var waiting: [String: Waiter] = [:]
    var tally = Counters()
    /// Negotiations in flight (Configuration.maxConcurrent).
    let slots: DispatchSemaphore
    /// One negotiation per device at a time: a child's key record is matched by its name.
    var deviceLocks: [UInt64: NSLock] = [:]
    /// Outbound SPIs (the handset's) of CHILD_SAs refused before the handset got them: their `down` is not its
    /// business. An entry leaves when its `down` arrives; `maxWithheld` bounds what a lost `down` leaves behind.
    var withheld: Set<UInt32> = []
    static let maxWithheld = 1024

    /// A transfer the peer made on its own (it initiated, or rekeyed), for the gateway to push with request 0.
    public var onPeerTransfer: (@Sendable (_ device: UInt64, _ transfer: KDSATransfer) -> Void)?
    /// A CHILD_SA the peer deleted, as the handset's (outbound, inbound) SPIs.
    public var onPeerDelete: (@Sendable (_ device: UInt64, _ outbound: UInt32, _ inbound: UInt32) -> Void)?

    public var counters: Counters { lock.withLock { tally } }

    /// With a virtual IP, the server's pool chooses the handset's address.
    public var assignsHandsetAddress: Bool { config.virtualIP }

    /// Keylog taps, for a Wireshark keylog the user asked for (`handset-emu run --keylog`) and nothing else: every
    /// up/rekeyed key record, and the IKE_SA key records a plugin with `ike_keys = yes` sends. Set before `start`.
    public var keylogTap: (@Sendable (KeyRecord) -> Void)?
    public var ikeKeysTap: (@Sendable (IKEKeyRecord) -> Void)?

    /// Sends what the peer does on its own to the handset through `gateway`: its new SAs as sa-transfer with
    /// request 0, its deletes as sa-delete. `send` gets the sealed downlinks.
    public func route(to gateway: Gateway, send: @escaping @Sendable ([Downlink]) -> Void) {
        onPeerTransfer = { [weak gateway] device, t in
            if let gateway { send(gateway.push(device: device, transfer: t)) }
        }
        onPeerDelete = { [weak gateway] device, outbound, inbound in
            if let gateway { send(gateway.deleteSA(device: device, outboundSPI: outbound, inboundSPI: inbound)) }
        }
        gateway.onPushAcknowledged = { [weak self] device, spi in self?.handsetInstalled(device: device, outboundSPI: spi) }
    }

    public init(configuration: Configuration, logger: Logger = Logger(label: "ike"),
                credentials: @escaping @Sendable (UInt64) throws -> Credentials?) {
        config = configuration
        slots = DispatchSemaphore(value: max(1, configuration.maxConcurrent))
        log = logger
        self.credentials = credentials
    }

    /// Credentials from the registry (identity, certificate and key or PSK, inner address).
    public convenience init(configuration: Configuration, registry: any RegistryStore, logger: Logger = Logger(label: "ike")) {
        self.init(configuration: configuration, logger: logger) { id in
            try registry.device(id: id).flatMap { Credentials(record: $0) }
        }
    }

    /// Opens the key socket (checking its listener) and loads the given devices so the server may initiate to them.
    public func start(devices: [UInt64] = []) throws {
        let r = KeyRecordReader(path: config.keySocket, trustedUID: config.trustedUID) { [weak self] in self?.handle($0) }
        r.onIKEKeys(ikeKeysTap)
        try r.start()
        lock.withLock { reader = r }
        for d in devices { _ = load(device: d, adding: nil) }
    }

    public func stop() { lock.withLock { reader }?.stop() }

    public var keySocketCounters: KeyRecordReader.Counters? { lock.withLock { reader }?.counters }

    /// The handset acknowledged a pushed SA (sa-ack, request 0): the plugin may end a rekey hold on it.
    public func handsetInstalled(device: UInt64, outboundSPI: UInt32) {
        lock.withLock { reader }?.installed(spiOut: outboundSPI)
    }

    public static func connectionName(_ device: UInt64) -> String { String(format: "hs-%016llx", device) }

    static func device(ofConnection name: String) -> UInt64? {
        guard name.hasPrefix("hs-"), name.utf8.count == 19 else { return nil }
        return UInt64(name.dropFirst(3), radix: 16)
    }

    /// One child per flow; the name says which.
    static func childName(_ device: UInt64, _ s: TrafficSelector) -> String {
        "\(connectionName(device))-\(s.remote.dottedQuad)-\(s.proto)-\(s.remotePort)-\(s.localPort)"
    }

    // MARK: PeerNegotiator

    public func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                          reused: Bool) -> Result<KDSATransfer, NegotiationFailure> {
        let one = lock.withLock { () -> NSLock in
            if let l = deviceLocks[device] { return l }
            let l = NSLock()
            deviceLocks[device] = l
            return l
        }
        let result = one.withLock { () -> Result<KDSATransfer, NegotiationFailure> in
            guard slots.wait(timeout: .now() + config.timeout) == .success else {
                lock.withLock { tally.busy += 1 }
                return .failure(.refused("IKE engine busy: \(config.maxConcurrent) negotiations in flight"))
            }
            defer { slots.signal() }
            return negotiate(device: device, selector: selector)
        }
        lock.withLock {
            if case .success = result { tally.established += 1 } else { tally.failed += 1 }
        }
        return result
    }

    /// A login: the device's IKE_SA (and with it every CHILD_SA) is deleted at the server.
    public func forget(device: UInt64) {
        lock.withLock { children[device] = nil }
        abandon(device)
    }

    /// The gateway could not bind the transfer's address: the IKE_SA is ended as for a login, without an sa-delete
    /// for a pair the handset never had.
    public func withdraw(device: UInt64, transfer: KDSATransfer) {
        withhold(transfer.outboundSPI)
        forget(device: device)
    }

    /// The `down` for this CHILD_SA (by the handset's outbound SPI) will not go to the handset.
    func withhold(_ spiOut: UInt32) {
        lock.withLock {
            if withheld.count >= Self.maxWithheld { withheld.removeFirst() }
            withheld.insert(spiOut)
        }
    }

    private func negotiate(device: UInt64, selector: TrafficSelector) -> Result<KDSATransfer, NegotiationFailure> {
        let deadline = Date().addingTimeInterval(config.timeout)
        let child = Self.childName(device, selector)
        if let failure = load(device: device, adding: (child, selector)) { return .failure(failure) }
        if let failure = routeCheck() { return .failure(failure) }
        let waiter = Waiter()
        lock.withLock { waiting[child] = waiter }
        defer { lock.withLock { if waiting[child] === waiter { waiting[child] = nil } } }

        var m = VICIMessage()
        m.add("child", child)
        m.add("ike", Self.connectionName(device))
        m.add("timeout", "\(Int(config.timeout * 1000))")
        m.add("loglevel", "1")
        let outcome: (response: VICIMessage, events: [VICIMessage])
        do {
            let vici = try VICIClient(path: config.viciSocket)
            defer { vici.close() }
            outcome = try vici.stream("initiate", m, event: "control-log", timeout: config.timeout + 2)
        } catch {
            log.error("VICI initiate failed", metadata: ["device": "\(device)", "error": "\(error)"])
            return .failure(.refused("IKE engine: \(error)"))
        }
        let lines = outcome.events.compactMap { $0.string("msg") }
        guard outcome.response.string("success") == "yes" else {
            let failure = Self.classify(log: lines, errmsg: outcome.response.string("errmsg") ?? "")
            if failure == .timeout || failure == .unreachable { abandon(device) }
            log.notice("negotiation failed", metadata: ["device": "\(device)", "why": "\(failure)",
                                                         "errmsg": "\(outcome.response.string("errmsg") ?? "")"])
            return .failure(failure == .timeout ? (routeCheck() ?? .timeout) : failure)
        }
        // The plugin writes the record when the keys are derived, before charon reports the CHILD_SA up.
        guard var record = waiter.wait(until: max(deadline, Date().addingTimeInterval(1))) else {
            log.error("CHILD_SA up but no key record came", metadata: ["device": "\(device)", "child": "\(child)"])
            return .failure(.refused("no key record from the plugin"))
        }
        defer { record.wipe() }
        switch virtualIP(of: record, device: device) {
        case .failure(let refused):
            withhold(record.spiOut)
            abandon(device)
            return .failure(refused)
        case .success(let vip):
            return transfer(from: record, selector: selector).map { t in
                var t = t
                t.handset = vip
                return t
            }
        }
    }

    /// Ends the device's IKE_SA without waiting; one still trying would otherwise retransmit for minutes.
    func abandon(_ device: UInt64) {
        var m = VICIMessage()
        m.add("ike", Self.connectionName(device))
        m.add("force", "yes")
        m.add("timeout", "-1")
        _ = try? VICIClient(path: config.viciSocket).call("terminate", m, timeout: 2)
    }

    /// No route from this host to where IKE goes: unreachable, without waiting for charon's retransmissions.
    func routeCheck() -> NegotiationFailure? {
        guard let a = IPAddress(dottedQuad: config.ikeRemoteAddress) else { return nil }
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return nil }
        defer { close(s) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = config.ikeRemotePort.bigEndian
        sin.sin_addr.s_addr = a.v4.bigEndian
        let rc = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc != 0 else { return nil }
        return [ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(errno) ? .unreachable : nil
    }

    /// The failure kind from what charon logged during the initiate (control-log) and its errmsg.
    static func classify(log lines: [String], errmsg: String) -> NegotiationFailure {
        let text = (lines + [errmsg]).joined(separator: "\n").lowercased()
        if text.contains("no_proposal_chosen") || text.contains("no acceptable proposal") { return .noProposalChosen }
        // The server has a conn for the device but no child covering the flow (a `mode = transport` child, say:
        // charon narrows it to the IKE addresses). Not a timeout: asking again gets the same answer.
        if text.contains("ts_unacceptable") { return .refused("the server accepts none of the flow's traffic selectors (TS_UNACCEPTABLE)") }
        if text.contains("authentication_failed") || text.contains("auth_failed") || text.contains("no shared key found")
            || (text.contains("authentication of") && text.contains("failed"))
            // X.509: the server's certificate does not chain to a configured CA, or its signature does not verify.
            || text.contains("no trusted") || text.contains("signature validation failed")
            || text.contains("no private key found") || text.contains("constraint check failed") { return .authenticationFailed }
        if text.contains("network is unreachable") || text.contains("no route to host") { return .unreachable }
        return .timeout
    }
}

/// One negotiation waiting for its key record.
final class Waiter: @unchecked Sendable {
    private let cond = NSCondition()
    private var record: KeyRecord?

    func fulfil(_ r: KeyRecord) {
        cond.withLock {
            record = r
            cond.signal()
        }
    }

    func wait(until deadline: Date) -> KeyRecord? {
        cond.withLock {
            while record == nil, cond.wait(until: deadline) {}
            defer { record = nil }
            return record
        }
    }
}
