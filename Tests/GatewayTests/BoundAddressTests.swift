import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// Issue 15 item 7: when the opposite party chooses the handset's inner address (an IKE server's virtual IP), the
/// gateway binds it to the device and the transfer names it (docs/key-delegation.md §4 flag bit 7, §6); the
/// handset adopts it. Both registry stores.
@Suite struct BoundAddressTests {
    static let provisioned = IPAddress(10, 0, 0, 2)
    static let lease = IPAddress(10, 202, 7, 1)

    /// A world whose peer chooses the handset's address: `address` in every transfer.
    func world(_ store: StoreKind, address: IPAddress = lease) throws -> World {
        let w = try World(store: store)
        w.peer.assignsHandsetAddress = true
        w.peer.reshape = { $0.handset = address }
        return w
    }

    func requestSA(_ c: inout KeyDelegationClient<FlashStore>, _ w: World, plane: inout HandsetPlane, now: UInt64 = 1) {
        let sel = TrafficSelector(local: c.innerAddress, remote: w.peer.address, localPort: 5000, remotePort: 7)
        c.requestKey(template: 1, selector: sel, now: now)
        exchange(&c, w.gateway, plane: &plane)
    }

    @Test(arguments: StoreKind.all) func theHandsetAdoptsTheAddressThePeerChoseAndKeepsItAcrossAReboot(store: StoreKind) throws {
        let w = try world(store)
        var c = try w.loggedInHandset()
        var plane = handsetPlane()
        #expect(c.innerAddress == Self.provisioned)
        requestSA(&c, w, plane: &plane)
        #expect(plane.sas.count == 2)
        #expect(c.innerAddress == Self.lease && c.counters.addressesAdopted == 1)
        // The SAs' local end is the new address.
        let local = plane.sas.snapshot(spi: w.peer.nextSPI - 2, direction: .outbound)?.params.local
        #expect(local == Self.lease)
        // The registry bound it, in place of the provisioned one: a lookup by address finds the device.
        #expect(try w.registry.device(id: w.deviceID)?.innerAddress == Self.lease)
        #expect(try w.registry.device(innerAddress: Self.lease)?.deviceID == w.deviceID)
        #expect(try w.registry.device(innerAddress: Self.provisioned) == nil)
        #expect(w.gateway.counters.addressesBound == 1 && w.gateway.counters.addressInUse == 0)
        // Durable with the key state: a reboot keeps it (the configured address is still 10.0.0.2).
        let image = try #require(w.flash.image)
        #expect(image.count == KeyState.maxEncodedLength)
        let rebooted = try w.handset()
        #expect(rebooted.localAddress == Self.provisioned && rebooted.innerAddress == Self.lease)
        // The next request names the bound address; a second transfer naming it again is no move.
        c.requestKey(template: 1, selector: TrafficSelector(local: c.innerAddress, remote: w.peer.address, localPort: 5001,
                                                          remotePort: 7), now: 2)
        let up = c.drain()
        #expect(up.count == 1)
        let answers = w.gateway.handleUplink(up[0])
        #expect(answers.map(\.type) == [.saTransfer])
        _ = c.deliver(answers, plane: &plane)
        #expect(plane.sas.count == 4 && c.counters.addressesAdopted == 1 && w.gateway.counters.addressesBound == 1)
    }

    /// The transfer is sealed under the downlink counter: a captured one replayed after a newer binding is counter
    /// low and moves nothing.
    @Test func aReplayedTransferCannotMoveTheAddress() throws {
        let w = try world(.sqlite)
        var c = try w.loggedInHandset()
        var plane = handsetPlane()
        c.requestKey(template: 1, selector: TrafficSelector(local: c.innerAddress, remote: w.peer.address, localPort: 5000,
                                                          remotePort: 7), now: 1)
        let first = w.gateway.handleUplink(c.drain()[0])
        #expect(first.map(\.type) == [.saTransfer])
        _ = c.deliver(first, plane: &plane)
        exchange(&c, w.gateway, plane: &plane)
        #expect(c.innerAddress == Self.lease)
        // The server's pool gives another address next time.
        let second = IPAddress(10, 202, 7, 2)
        w.peer.reshape = { $0.handset = second }
        requestSA(&c, w, plane: &plane, now: 2)
        #expect(c.innerAddress == second && c.counters.addressesAdopted == 2)
        let low = c.counters.counterLow
        let results = c.deliver(first, plane: &plane)
        #expect(results.count == 1 && c.counters.counterLow == low + 1)
        #expect(c.innerAddress == second)
        #expect(try #require(w.flash.image).withUnsafeBytes { KeyState.decode($0) }?.innerAddress == second)
    }

    /// Two devices are never bound to one address: the peer's choice of another device's address is refused,
    /// counted, and the device's SAs at the peer are closed (its IKE_SA, with the strongSwan negotiator).
    @Test(arguments: StoreKind.all) func anAddressAnotherDeviceHoldsIsRefused(store: StoreKind) throws {
        let w = try world(store)
        try w.registry.add(DeviceRecord(id: 0xB, msisdn: "+15550011", key: Data(KeyMaterial.random(32)), innerAddress: Self.lease))
        var c = try w.loggedInHandset()
        var plane = handsetPlane()
        let forgotten = w.peer.forgotten
        c.requestKey(template: 1, selector: TrafficSelector(local: c.innerAddress, remote: w.peer.address, localPort: 5000,
                                                          remotePort: 7), now: 1)
        let answers = w.gateway.handleUplink(c.drain()[0])
        #expect(answers.map(\.type) == [.error])
        _ = c.deliver(answers, plane: &plane)
        #expect(plane.sas.count == 0 && c.innerAddress == Self.provisioned && c.counters.addressesAdopted == 0)
        #expect(w.gateway.counters.addressInUse == 1 && w.gateway.counters.addressesBound == 0)
        #expect(w.peer.forgotten == forgotten + 1)
        #expect(try w.registry.device(id: w.deviceID)?.innerAddress == Self.provisioned)
        #expect(try w.registry.device(id: 0xB)?.innerAddress == Self.lease)
    }

    /// The same for an SA the peer started (pushed with request 0): nothing goes to the handset.
    @Test(arguments: StoreKind.all) func aPushWithAnAddressAnotherDeviceHoldsIsDropped(store: StoreKind) throws {
        let w = try world(store)
        try w.registry.add(DeviceRecord(id: 0xB, msisdn: "+15550011", key: Data(KeyMaterial.random(32)), innerAddress: Self.lease))
        var t = try #require(try? w.peer.establish(device: w.deviceID, handset: Self.provisioned,
                                                   selector: TrafficSelector(local: Self.provisioned, remote: w.peer.address,
                                                                             localPort: 0, remotePort: 7),
                                                   template: 0, reused: false).get())
        t.handset = Self.lease
        #expect(w.gateway.push(device: w.deviceID, transfer: t).isEmpty)
        #expect(w.gateway.counters.addressInUse == 1 && w.gateway.counters.saPushed == 0 && w.peer.forgotten == 1)
        // Its own lease goes through.
        t.handset = IPAddress(10, 202, 7, 3)
        #expect(w.gateway.push(device: w.deviceID, transfer: t).map(\.type) == [.saTransfer])
        #expect(try w.registry.device(id: w.deviceID)?.innerAddress == IPAddress(10, 202, 7, 3))
    }

    /// Another gateway sharing the store binds the address between this one's check and its write: the store's
    /// unique column refuses the write, and that, only that, is `addressInUse`.
    @Test(arguments: StoreKind.all) func aClashOnlyTheUniqueColumnSawIsAddressInUse(store: StoreKind) throws {
        let w = try world(store)
        try w.registry.add(DeviceRecord(id: 0xB, msisdn: "+15550011", key: Data(KeyMaterial.random(32)), innerAddress: Self.lease))
        let racing = RacingStore(w.registry)
        racing.holderLookup = { _ in nil }  // the check sees no holder: the other gateway had not committed yet
        let gateway = Gateway(registry: racing, negotiator: w.peer, services: w.peer)
        let t = try pushedTransfer(w, handset: Self.lease)
        #expect(gateway.push(device: w.deviceID, transfer: t).isEmpty)
        #expect(gateway.counters.addressInUse == 1 && gateway.counters.storeFailures == 0 && gateway.counters.saPushed == 0)
        #expect(w.peer.forgotten == 1)
        #expect(try w.registry.device(id: w.deviceID)?.innerAddress == Self.provisioned)
        #expect(try w.registry.device(id: 0xB)?.innerAddress == Self.lease)
    }

    /// A registry that fails while binding is a registry failure, not an address in use.
    @Test(arguments: StoreKind.all) func aRegistryFailureWhileBindingIsNotAddressInUse(store: StoreKind) throws {
        let w = try world(store)
        let racing = RacingStore(w.registry)
        racing.holderLookup = { _ in throw RegistryError.storeUnavailable("connection lost") }
        let gateway = Gateway(registry: racing, negotiator: w.peer, services: w.peer)
        let t = try pushedTransfer(w, handset: Self.lease)
        #expect(gateway.push(device: w.deviceID, transfer: t).isEmpty)
        #expect(gateway.counters.storeFailures == 1 && gateway.counters.addressInUse == 0 && gateway.counters.saPushed == 0)
        #expect(try w.registry.device(id: w.deviceID)?.innerAddress == Self.provisioned)
    }

    func pushedTransfer(_ w: World, handset: IPAddress) throws -> KDSATransfer {
        var t = try #require(try? w.peer.establish(device: w.deviceID, handset: Self.provisioned,
                                                   selector: TrafficSelector(local: Self.provisioned, remote: w.peer.address,
                                                                             localPort: 0, remotePort: 7),
                                                   template: 0, reused: false).get())
        t.handset = handset
        return t
    }

    /// Without a peer that chooses addresses nothing changes: a request naming another address is still refused.
    @Test func aPeerThatDoesNotChooseKeepsTheAddressCheck() throws {
        let w = try World()
        let foreign = TrafficSelector(local: IPAddress(10, 0, 0, 3), remote: w.peer.address, localPort: 0, remotePort: 7)
        #expect(w.gateway.push(device: w.deviceID, selector: foreign).map(\.type) == [.error])
        #expect(w.gateway.counters.addressRefused == 1)
    }

    /// The stored key state: 106 bytes ("HSK1") without a bound address, 110 ("HSK2") with one; an address no
    /// handset may hold, or a flipped bit, does not load.
    @Test func keyStateKeepsTheBoundAddress() throws {
        var s = KeyState(deviceID: 7, key: KeyBytes())
        func encoded(_ s: KeyState) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: KeyState.maxEncodedLength)
            let n = b.withUnsafeMutableBytes { s.encode(into: $0) }
            return Array(b[0..<n])
        }
        #expect(encoded(s).count == KeyState.encodedLength)
        s.innerAddress = Self.lease
        let with = encoded(s)
        #expect(with.count == KeyState.maxEncodedLength && Array(with[0..<4]) == Array("HSK2".utf8))
        #expect(with.withUnsafeBytes { KeyState.decode($0) } == s)
        var flipped = with
        flipped[100] ^= 1
        #expect(flipped.withUnsafeBytes { KeyState.decode($0) } == nil)
        s.innerAddress = IPAddress(127, 0, 0, 1)
        #expect(encoded(s).withUnsafeBytes { KeyState.decode($0) } == nil)
    }
}

/// A real store whose lookup by inner address the test decides: what another gateway sharing the store would leave
/// this one to see between its check and its write.
final class RacingStore: RegistryStore, @unchecked Sendable {
    let inner: any RegistryStore
    var holderLookup: ((IPAddress) throws -> DeviceRecord?)?
    init(_ inner: any RegistryStore) { self.inner = inner }

    func add(_ d: DeviceRecord, pool: AddressPool) throws -> DeviceRecord { try inner.add(d, pool: pool) }
    func device(id: UInt64) throws -> DeviceRecord? { try inner.device(id: id) }
    func device(msisdn: String) throws -> DeviceRecord? { try inner.device(msisdn: msisdn) }
    func device(innerAddress a: IPAddress) throws -> DeviceRecord? {
        if let holderLookup { return try holderLookup(a) }
        return try inner.device(innerAddress: a)
    }
    func update<T>(device id: UInt64, _ change: (inout DeviceRecord) throws -> T) throws -> T? {
        try inner.update(device: id, change)
    }
    func save(_ d: DeviceRecord) throws { try inner.save(d) }
    func allDevices() throws -> [DeviceRecord] { try inner.allDevices() }
    func skipDownlinks(device: UInt64, _ n: Int64) throws { try inner.skipDownlinks(device: device, n) }
    func rowsWritten() throws -> Int { try inner.rowsWritten() }
    func notePeerContact(device: UInt64, peer: String) throws -> Bool { try inner.notePeerContact(device: device, peer: peer) }
    func forgetPeers(device: UInt64) throws { try inner.forgetPeers(device: device) }
}
