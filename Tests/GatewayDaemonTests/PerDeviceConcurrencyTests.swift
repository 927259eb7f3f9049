import Foundation
import Gateway
@testable import GatewayDaemon
import Testing
@testable import HandsetCore

/// The handset's key state in memory: enough for one login.
struct MemoryKeyStore: KeyStateStore {
    var state: KeyState
    mutating func load() throws(StoreError) -> KeyState { state }
    mutating func save(_ s: KeyState) throws(StoreError) { state = s }
}

/// A peer whose `forget` (the first thing a login does) blocks for one device until released.
final class StallingPeer: PeerNegotiator, @unchecked Sendable {
    let stalled: UInt64
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    init(stalling device: UInt64) { stalled = device }

    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure> { .failure(.timeout) }
    func forget(device: UInt64) {
        guard device == stalled else { return }
        entered.signal()
        _ = release.wait(timeout: .now() + 10)
    }
}

@Suite struct PerDeviceConcurrencyTests {
    static let a: UInt64 = 0xA0A0_0000_0000_0001, b: UInt64 = 0xB0B0_0000_0000_0002

    /// A gateway on a fresh registry holding devices A and B, and each handset's first (login) message.
    static func world(peer: PeerNegotiator) throws -> (Gateway, login: [UInt64: [UInt8]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let registry = try DeviceRegistry(path: dir.appendingPathComponent("reg.sqlite").path,
                                          kek: try KeyEncryptionKey.loadOrCreate(path: dir.appendingPathComponent("reg.kek").path))
        var logins: [UInt64: [UInt8]] = [:]
        for (n, id) in [a, b].enumerated() {
            let key = (0..<32).map { UInt8(truncatingIfNeeded: $0 * 11 + n) }
            try registry.add(DeviceRecord(id: id, msisdn: "+1555000\(n)", key: Data(key)))
            let keyBytes = key.withUnsafeBytes { KeyBytes($0) }
            var c = try KeyDelegationClient(store: MemoryKeyStore(state: KeyState(deviceID: id, key: keyBytes)))
            c.boot(now: 0)
            let m = c.outbox.pop()
            logins[id] = try #require(m?.bytes.withBytes { Array($0) })
        }
        return (Gateway(registry: registry, negotiator: peer), logins)
    }

    /// Device A's login is stuck in the peer; device B's login, queued after it, is answered at once, and A's
    /// completes once the peer lets go. With one queue for every device, B would wait the full stall.
    @Test func aStalledDeviceDoesNotDelayAnotherDevicesLogin() throws {
        let peer = StallingPeer(stalling: Self.a)
        let (gateway, login) = try Self.world(peer: peer)
        let serializer = DeviceSerializer()
        let aDone = DispatchSemaphore(value: 0), bDone = DispatchSemaphore(value: 0)
        let bAnswers = LockedBox<[Downlink]>([])
        serializer.submit(device: Self.a) { _ = gateway.handleUplink(login[Self.a]!); aDone.signal() }
        #expect(peer.entered.wait(timeout: .now() + 5) == .success)
        let start = Date()
        serializer.submit(device: Self.b) { bAnswers.set(gateway.handleUplink(login[Self.b]!)); bDone.signal() }
        #expect(bDone.wait(timeout: .now() + 3) == .success)
        let waited = Date().timeIntervalSince(start)
        #expect(waited < 1, "B waited \(waited) s behind A")
        #expect(bAnswers.get().map(\.type) == [.loginAck])
        #expect(aDone.wait(timeout: .now()) == .timedOut, "A is still held by the peer")
        peer.release.signal()
        #expect(aDone.wait(timeout: .now() + 5) == .success)
        #expect(gateway.counters.logins == 2)
    }

    /// Work for one device runs in order and never two at once.
    @Test func oneDevicesWorkRunsInOrderOneAtATime() {
        let serializer = DeviceSerializer()
        let log = LockedBox<[Int]>([]), active = LockedBox(0), overlap = LockedBox(false)
        for i in 0..<50 {
            serializer.submit(device: 7) {
                active.update { $0 += 1; if $0 > 1 { overlap.set(true) } }
                usleep(200)
                log.update { $0.append(i) }
                active.update { $0 -= 1 }
            }
        }
        #expect(serializer.waitIdle(timeout: 5))
        #expect(log.get() == Array(0..<50))
        #expect(!overlap.get())
        #expect(serializer.pending == 0)
    }
}

final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func get() -> T { lock.withLock { value } }
    func set(_ v: T) { lock.withLock { value = v } }
    func update(_ f: (inout T) -> Void) { lock.withLock { f(&value) } }
}

@Suite struct DeviceSerializerBoundTests {
    /// With every worker busy, a new device waits its turn (counted) and runs as soon as one is free; the
    /// number of threads never exceeds the bound.
    @Test func pastTheBoundDevicesWaitForAFreeWorker() {
        let serializer = DeviceSerializer(maxWorkers: 2)
        let gate = DispatchSemaphore(value: 0)
        let active = LockedBox(0), peak = LockedBox(0), ran = LockedBox<[UInt64]>([])
        for d: UInt64 in 1...3 {
            serializer.submit(device: d) {
                active.update { $0 += 1; let a = $0; peak.update { $0 = max($0, a) } }
                if d < 3 { _ = gate.wait(timeout: .now() + 5) }
                ran.update { $0.append(d) }
                active.update { $0 -= 1 }
            }
        }
        usleep(100_000)
        #expect(serializer.waitingDevices == 1)
        #expect(ran.get().isEmpty, "device 3 ran before a worker was free")
        gate.signal()  // one of devices 1 and 2 finishes; its worker takes device 3 while the other still waits
        let deadline = Date().addingTimeInterval(3)
        while !ran.get().contains(3), Date() < deadline { usleep(10_000) }
        #expect(ran.get().count == 2 && ran.get().last == 3)
        gate.signal()
        #expect(serializer.waitIdle(timeout: 5))
        #expect(Set(ran.get()) == [1, 2, 3])
        #expect(peak.get() == 2 && serializer.waitingDevices == 0)
    }

    /// What a timed-out drain logs: each device whose item is still running, for how long, and what waits behind it.
    @Test func busyNamesTheDeviceStillRunningAndWhatWaitsBehindIt() {
        let serializer = DeviceSerializer()
        let gate = DispatchSemaphore(value: 0)
        serializer.submit(device: 7) { _ = gate.wait(timeout: .now() + 5) }
        serializer.submit(device: 7) {}
        serializer.submit(device: 8) {}
        usleep(200_000)
        let busy = serializer.busy()
        #expect(busy.map(\.device) == [7] && busy.first?.queued == 1)
        #expect((busy.first?.seconds ?? 0) >= 0.15)
        gate.signal()
        #expect(serializer.waitIdle(timeout: 5))
        #expect(serializer.busy().isEmpty)
    }
}
