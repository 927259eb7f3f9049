import Foundation
import HandsetCore
#if canImport(Glibc)
import Glibc
#endif

/// A handset's key state in memory: the load generator's devices have no flash.
struct MemoryKeyStore: KeyStateStore {
    var state: KeyState
    mutating func load() throws(StoreError) -> KeyState { state }
    mutating func save(_ s: KeyState) throws(StoreError) { state = s }
}

typealias LoadPlane = DataPlane<16, 2>

/// What one device does at a time; each ends when its last answer arrived (or, for secret data, its last ack).
enum LoadAction: String, CaseIterable, Sendable {
    case login = "login+rotation", keyRequest = "key-request", secret = "secret-data", fetch = "fetch"
}

/// One in-process handset: the real `KeyDelegationClient` with its key state in memory, no modem.
final class LoadDevice: @unchecked Sendable {
    let index: Int
    let id: UInt64
    let msisdn: String
    let inner: IPAddress
    let lock = NSLock()
    /// Held from the moment a batch of uplinks leaves the client until it is handed to the carriers, so one
    /// device's messages go out in counter order.
    let sendLock = NSLock()
    var client: KeyDelegationClient<MemoryKeyStore>
    var plane = LoadPlane(defaultAction: .discard)
    var action: LoadAction?
    var actionStart = 0.0
    var lane: Int?
    var udpSentAt = 0.0
    /// The UDP key request awaiting its answer (sent again, the same bytes, while none comes), when it was last
    /// sent, and how often.
    var udpRequest: [UInt8]?
    var udpLastSent = 0.0
    var udpSends = 0
    var smsUnacked = 0
    var requestPort: UInt16 = 10_000
    var maxAcked: UInt64 = 0

    init(index: Int, id: UInt64, msisdn: String, inner: IPAddress, key: KeyBytes) throws {
        self.index = index; self.id = id; self.msisdn = msisdn; self.inner = inner
        client = try KeyDelegationClient(store: MemoryKeyStore(state: KeyState(deviceID: id, key: key)))
        client.localAddress = inner
    }
}

/// Every sealed message seen on the wire, by (key, direction, counter): the same pair with other bytes is a nonce
/// reused under one key. The same bytes again (a redelivery) is not. Key fingerprints stay in memory, never printed.
final class LoadNonceLedger: @unchecked Sendable {
    struct Slot: Hashable { var device: UInt64; var up: Bool; var epoch: UInt16; var key: UInt64; var counter: UInt64 }
    private let lock = NSLock()
    private var seen: [Slot: (digest: UInt64, what: String)] = [:]
    private(set) var sealed = 0, repeats = 0, sameBytesAgain = 0
    private(set) var examples: [String] = []
    private let salt = UInt64.random(in: 0...UInt64.max)

    func fingerprint(_ k: KeyBytes) -> UInt64 { k.withBytes { fnv($0, seed: salt) } }

    func fnv(_ b: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return h
    }

    func record(device: UInt64, up: Bool, epoch: UInt16, key: UInt64, counter: UInt64, bytes: [UInt8], what: String) {
        let digest = bytes.withUnsafeBytes { fnv($0) }
        let slot = Slot(device: device, up: up, epoch: epoch, key: key, counter: counter)
        lock.withLock {
            sealed += 1
            guard let before = seen[slot] else { seen[slot] = (digest, what); return }
            if before.digest == digest { sameBytesAgain += 1; return }
            repeats += 1
            if examples.count < 5 {
                examples.append("device \(String(device, radix: 16)) \(up ? "uplink" : "downlink") epoch \(epoch) counter \(counter) "
                                + "(\(before.what), then \(what))")
            }
        }
    }

    var summary: (sealed: Int, repeats: Int, again: Int, examples: [String]) { lock.withLock { (sealed, repeats, sameBytesAgain, examples) } }
}

/// Latencies and counts of one run.
final class LoadStats: @unchecked Sendable {
    private let lock = NSLock()
    var uplinksSent = 0, uplinksSMS = 0, uplinksUDP = 0, smsAcked = 0, smsRefused = 0, udpAnswered = 0
    var downlinks = 0, downlinksUDP = 0
    var gatewayLatency: [Double] = []
    var roundTrip: [LoadAction: [Double]] = [:]
    var started: [LoadAction: Int] = [:]
    var timeouts: [LoadAction: Int] = [:]
    var received: [String: Int] = [:]
    var rejected: [String: Int] = [:]
    var errorAnswers = 0, noIdleDevice = 0
    /// UDP key requests sent again (same bytes) for want of an answer; and those given up after the last try.
    var udpRetransmits = 0, udpGivenUp = 0

    func with<T>(_ body: (LoadStats) -> T) -> T { lock.withLock { body(self) } }
}

func percentile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s[min(s.count - 1, Int(Double(s.count) * q))]
}

/// The handsets, their carriers (SMPP through `LoadSMSC`, UDP through a few leased sockets) and the bookkeeping.
final class LoadFleet: @unchecked Sendable {
    let devices: [LoadDevice]
    let byNumber: [String: Int]
    let smsc: LoadSMSC
    let stats = LoadStats()
    let ledger = LoadNonceLedger()
    let udpShare: Double
    let timeout: Double
    private let lanesLock = NSLock()
    private var lanes: [Int32] = []
    private var udpPorts: [Int]
    private var deadInstances = Set<Int>()
    private var running = true
    private var epochStart = loadClock()

    init(devices: [LoadDevice], smsc: LoadSMSC, udpPorts: [Int], udpShare: Double, timeout: Double) throws {
        self.devices = devices
        self.smsc = smsc
        self.udpPorts = udpPorts
        self.udpShare = udpShare
        self.timeout = timeout
        var numbers: [String: Int] = [:]
        for d in devices { numbers[String(d.msisdn.drop { $0 == "+" })] = d.index }
        byNumber = numbers
        // One UDP socket per device: an answer is the device's by the socket it comes to, however late it comes
        // (a shared socket handed from device to device misrouted late answers to the next holder).
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        for _ in 0..<(udpPorts.isEmpty || udpShare == 0 ? 0 : devices.count) {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, rc == 0 else { throw LoadError("cannot open a UDP socket: \(String(cString: strerror(errno)))") }
            lanes.append(fd)
        }
        smsc.onDownlink = { [unowned self] to, bytes in
            guard let i = byNumber[to] else { return }
            downlink(devices[i], bytes, via: .sms)
        }
        smsc.onAck = { [unowned self] i, counter, latency in acked(devices[i], counter: counter, latency: latency) }
        if !lanes.isEmpty { Thread.detachNewThread { [self] in udpLoop() } }
    }

    func stop() {
        lanesLock.withLock { running = false }
        usleep(150_000)
        for fd in lanes { close(fd) }
    }

    func instanceDied(_ k: Int) { lanesLock.withLock { _ = deadInstances.insert(k) } }

    func now() -> Double { loadClock() - epochStart }

    // MARK: Driving

    /// Starts the next action of device `d` if it is idle (or its action timed out); returns the uplinks it sent.
    func start(_ d: LoadDevice) -> Int {
        d.lock.lock()
        let t = loadClock()
        if let a = d.action {
            guard t - d.actionStart > timeout else { d.lock.unlock(); return 0 }
            stats.with { $0.timeouts[a, default: 0] += 1 }
            finish(d, releaseLane: true, completed: false)
        }
        guard d.lane == nil else { d.lock.unlock(); return 0 }  // an answer's last sends are still going out
        let secs = UInt64(now())
        var action: LoadAction
        if d.client.phase != .ready {
            action = .login
        } else {
            let r = Double.random(in: 0..<1)
            action = r < 0.15 ? .login : r < 0.5 ? .keyRequest : r < 0.8 ? .secret : .fetch
        }
        switch action {
        case .login:
            d.plane = LoadPlane(defaultAction: .discard)  // a reboot: the SAs of the last session are gone
            d.client.boot(now: secs)
        case .keyRequest:
            d.requestPort = d.requestPort >= 60_000 ? 10_000 : d.requestPort + 1
            if Double.random(in: 0..<1) < udpShare { d.lane = lease(d.index) }
            d.client.requestKey(template: 1, selector: TrafficSelector(local: d.inner, remote: IPAddress(127, 0, 0, 1),
                                                                      localPort: d.requestPort, remotePort: 7), now: secs)
        case .secret:
            sendSecret(d)
        case .fetch:
            _ = Array("https://example.invalid/load".utf8).withUnsafeBytes { d.client.fetch($0) }
        }
        if d.client.outbox.isEmpty {
            // Nothing went out (all request slots busy with refused requests): secret data instead.
            if let lane = d.lane { release(lane); d.lane = nil }
            action = .secret
            sendSecret(d)
            guard !d.client.outbox.isEmpty else { d.lock.unlock(); return 0 }
        }
        d.action = action
        d.actionStart = t
        stats.with { $0.started[action, default: 0] += 1 }
        return send(d)  // unlocks
    }

    func sendSecret(_ d: LoadDevice) {
        var data = [UInt8](repeating: 0, count: 32)
        for i in data.indices { data[i] = UInt8.random(in: 0...255) }
        _ = data.withUnsafeBytes { d.client.sendSecret(channel: 1, $0) }
    }

    /// Drains the client's outbox (with `d.lock` held; releases it) and hands the messages to their carriers.
    private func send(_ d: LoadDevice) -> Int {
        var out: [([UInt8], KDMessageType, Bool)] = []
        while let m = d.client.outbox.pop() {
            let bytes = m.bytes.withBytes { Array($0) }
            if let h = bytes.withUnsafeBytes({ KDHeader.parse($0, direction: .up) }) {
                let st = d.client.state
                let key = h.epoch == st.epoch ? st.currentKey : st.pendingKey
                ledger.record(device: d.id, up: true, epoch: h.epoch, key: ledger.fingerprint(key), counter: h.counter, bytes: bytes,
                              what: "\(h.type) \(bytes.count) B")
            }
            let viaUDP = !m.smsOnly && d.lane != nil
            if !viaUDP { d.smsUnacked += 1 }
            if viaUDP && m.type == .keyRequest {
                d.udpSentAt = loadClock()
                d.udpLastSent = d.udpSentAt
                d.udpRequest = bytes
                d.udpSends = 1
            }
            out.append((bytes, m.type, viaUDP))
        }
        let lane = d.lane
        d.sendLock.lock()
        d.lock.unlock()
        defer { d.sendLock.unlock() }
        for (bytes, _, viaUDP) in out {
            let counter = bytes.withUnsafeBytes { KDHeader.parse($0, direction: .up)?.counter ?? 0 }
            if viaUDP, let lane {
                sendUDP(bytes, lane: lane, device: d.index)
            } else {
                smsc.send(device: d.index, counter: counter, from: d.msisdn, payload: bytes)
            }
        }
        stats.with {
            $0.uplinksSent += out.count
            $0.uplinksUDP += out.filter(\.2).count
            $0.uplinksSMS += out.filter { !$0.2 }.count
        }
        return out.count
    }

    private func acked(_ d: LoadDevice, counter: UInt64, latency: Double?) {
        stats.with {
            if let latency { $0.smsAcked += 1; $0.gatewayLatency.append(latency) } else { $0.smsRefused += 1 }
        }
        d.lock.withLock {
            d.smsUnacked -= 1
            if latency != nil { d.maxAcked = max(d.maxAcked, counter) }
            if d.action == .secret && d.smsUnacked == 0 { finish(d, releaseLane: true) }
        }
    }

    /// With `d.lock` held.
    private func finish(_ d: LoadDevice, releaseLane: Bool, completed: Bool = true) {
        if completed, let a = d.action, a != .secret || d.smsUnacked == 0 {
            let rt = loadClock() - d.actionStart
            stats.with { $0.roundTrip[a, default: []].append(rt) }
        }
        d.action = nil
        d.udpRequest = nil
        if releaseLane, let lane = d.lane { release(lane); d.lane = nil }
    }

    func downlink(_ d: LoadDevice, _ bytes: [UInt8], via carriage: KDCarriage) {
        d.lock.lock()
        let header = bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) }
        let unexpectedBefore = d.client.counters.unexpected, phaseBefore = d.client.phase
        if let h = header {
            let st = d.client.state
            let key: KeyBytes? = h.epoch == st.epoch ? st.currentKey : (st.hasPending && h.epoch == st.pendingEpoch ? st.pendingKey : nil)
            ledger.record(device: d.id, up: false, epoch: h.epoch, key: key.map(ledger.fingerprint) ?? 0, counter: h.counter, bytes: bytes,
                          what: "\(h.type) \(bytes.count) B by \(carriage)")
        }
        let result = bytes.withUnsafeBytes { d.client.receive($0, via: carriage, now: UInt64(now()), plane: &d.plane) }
        var done = false
        switch result {
        case .accepted(let t):
            stats.with {
                $0.downlinks += 1
                if carriage == .udp { $0.downlinksUDP += 1 }
                $0.received["\(t)", default: 0] += 1
                if t == .error { $0.errorAnswers += 1 }
            }
            switch d.action {
            case .login: done = d.client.phase == .ready
            case .keyRequest:
                done = t == .saTransfer || t == .error
                if done, carriage == .udp {
                    let rt = loadClock() - d.udpSentAt
                    stats.with { $0.udpAnswered += 1; $0.gatewayLatency.append(rt) }
                }
            case .fetch: done = t == .fetchResponse || t == .error
            case .secret, nil: break
            }
        case .rejected(let why):
            // badMessage is two things: an authentic answer that makes no sense in the handset's phase (a stale or
            // duplicate one; its counter is consumed) or a malformed message. Told apart, with the type and phase.
            let unexpected = d.client.counters.unexpected != unexpectedBefore
            let kind = unexpected ? "\(why): unexpected \(header.map { "\($0.type)" } ?? "?") while \(phaseBefore)" : "\(why)"
            stats.with { $0.rejected[kind, default: 0] += 1 }
        }
        while d.client.inbox.pop() != nil {}
        _ = d.client.installed.pop()
        if done {
            // The sa-ack (if any) goes out on the lane before it is let go.
            let lane = d.lane
            d.lane = nil
            finish(d, releaseLane: false)
            d.lane = lane
            _ = send(d)
            d.lock.withLock {
                if d.action == nil, let lane = d.lane { release(lane); d.lane = nil }
            }
        } else {
            _ = send(d)
        }
    }

    // MARK: UDP lanes

    /// The device's own UDP socket, when there are any.
    private func lease(_ device: Int) -> Int? { device < lanes.count ? device : nil }

    private func release(_ lane: Int) {}

    private func sendUDP(_ bytes: [UInt8], lane: Int, device: Int) {
        let port: Int? = lanesLock.withLock {
            let live = udpPorts.indices.filter { !deadInstances.contains($0) }
            return live.isEmpty ? nil : udpPorts[live[device % live.count]]
        }
        guard let port, lane < lanes.count else { return }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        let datagram = [UInt8](repeating: 0, count: KD.nonESPMarkerLength) + bytes
        _ = datagram.withUnsafeBytes { b in
            withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(lanes[lane], b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// UDP has no delivery guarantee (a killed instance, a request the registry could not take): a key request with
    /// no answer goes out again, the same bytes, every `udpRetry` seconds, `udpTries` times in all. A copy the
    /// gateway already accepted is a replay to it and is never answered; one it never took is served.
    static let udpRetry = 1.0, udpTries = 4
    private var lastRetransmitScan = 0.0

    private func retransmitUDP() {
        let t = loadClock()
        guard t - lastRetransmitScan >= 0.1 else { return }
        lastRetransmitScan = t
        for d in devices {
            let again: (bytes: [UInt8], lane: Int)? = d.lock.withLock {
                guard let bytes = d.udpRequest, let lane = d.lane, d.action == .keyRequest, t - d.udpLastSent >= Self.udpRetry
                else { return nil }
                guard d.udpSends < Self.udpTries else {
                    d.udpRequest = nil
                    stats.with { $0.udpGivenUp += 1 }
                    return nil
                }
                d.udpSends += 1
                d.udpLastSent = t
                return (bytes, lane)
            }
            guard let again else { continue }
            stats.with { $0.udpRetransmits += 1 }
            d.sendLock.withLock { sendUDP(again.bytes, lane: again.lane, device: d.index) }
        }
    }

    private func udpLoop() {
        var fds = lanes.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 2048)
        while lanesLock.withLock({ running }) {
            retransmitUDP()
            guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
            for i in fds.indices where fds[i].revents != 0 {  // POLLERR too: recv takes the error
                let n = buffer.withUnsafeMutableBytes { recv(fds[i].fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                guard n > KD.nonESPMarkerLength else { continue }
                downlink(devices[i], Array(buffer[KD.nonESPMarkerLength..<n]), via: .udp)
            }
        }
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ s: String) { description = s }
}
