import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// Issue 12 item 3: a device's key proves who it is; its inner address is the one on record, never one it names.
@Suite struct InnerAddressTests {
    /// A second device with its own key and flash, registered at `address`.
    func device(_ w: World, id: UInt64, msisdn: String, address: IPAddress) throws -> KeyDelegationClient<FlashStore> {
        let flash = Flash()
        let key = [UInt8](repeating: UInt8(truncatingIfNeeded: id) | 0x40, count: 32)
        try w.registry.add(DeviceRecord(id: id, msisdn: msisdn, key: Data(key), innerAddress: address))
        var st = FlashStore(flash: flash)
        let k = key.withUnsafeBytes { KeyBytes($0) }
        try st.save(KeyState(deviceID: id, key: k))
        var c = try KeyDelegationClient(store: FlashStore(flash: flash))
        c.localAddress = address
        return c
    }

    /// Opens a downlink with the device's current key as the registry holds it and returns its body.
    func body(_ d: Downlink, _ dev: DeviceRecord) throws -> KDBody? {
        let h = try #require(d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) })
        var keys = DeliveryKeys()
        #expect(dev.key.withUnsafeBytes { keys.derive(deviceKey: $0, deviceID: dev.deviceID, epoch: UInt16(dev.epoch)) })
        var plain = [UInt8](repeating: 0, count: d.bytes.count)
        let n = try #require(d.bytes.withUnsafeBytes { w in plain.withUnsafeMutableBytes { keys.open(w, header: h, direction: .down, into: $0) } })
        return plain[0..<n].withUnsafeBytes { KDBody.decode(h.type, $0) }
    }

    /// The datagram the handset's plane opens from `packet`, or nil when it cannot.
    func open(_ packet: [UInt8], on plane: inout HandsetPlane) -> [UInt8]? {
        var plain = [UInt8](repeating: 0, count: 512)
        let r = try? packet.withUnsafeBytes { p in try plain.withUnsafeMutableBytes { try plane.open(p, into: $0) } }
        guard case .datagram(_, let range)? = r else { return nil }
        return Array(plain[range])
    }

    @Test func aDeviceAskingForAnotherDevicesAddressIsRefusedCountedAndGetsNoTraffic() throws {
        let w = try World()
        // B: the world's device at 10.0.0.2, logged in, with a pair to the peer.
        var b = try w.handset()
        var bPlane = HandsetPlane()
        try bPlane.spd.append(SPDRule(SelectorPattern(remote: w.peer.address, prefix: 32), .protect(template: 1)))
        b.boot(now: 0)
        exchange(&b, w.gateway, plane: &bPlane)
        let sel = TrafficSelector(local: b.localAddress, remote: w.peer.address, localPort: 5000, remotePort: 7)
        b.requestKey(template: 1, selector: sel, now: 1)
        exchange(&b, w.gateway, plane: &bPlane)
        #expect(bPlane.sas.count == 2)

        // A: its own valid key and address, logged in, then it names B's address in a key request.
        var a = try device(w, id: 0xA, msisdn: "+15550010", address: IPAddress(10, 77, 0, 9))
        var aPlane = HandsetPlane()
        try aPlane.spd.append(SPDRule(SelectorPattern(remote: w.peer.address, prefix: 32), .protect(template: 1)))
        a.boot(now: 0)
        exchange(&a, w.gateway, plane: &aPlane)
        #expect(a.phase == .ready)
        a.localAddress = b.localAddress
        let establishedBefore = w.peer.establishCalls
        a.requestKey(template: 1, selector: sel, now: 2)
        let up = a.drain()
        #expect(up.count == 1)
        let answer = w.gateway.handleUplink(up[0])
        #expect(answer.map(\.type) == [.error])
        let aRecord = try #require(try w.registry.device(id: 0xA))
        if let d = answer.first, case .error(let e)? = try body(d, aRecord) {
            #expect(e.status == .denied)
        } else {
            Issue.record("expected an error")
        }
        #expect(w.gateway.counters.addressRefused == 1)
        #expect(w.peer.establishCalls == establishedBefore)
        _ = a.deliver(answer, plane: &aPlane)
        #expect(aPlane.sas.count == 0)

        // The peer's traffic for 10.0.0.2 still opens on B, and not on A.
        var out = [UInt8](repeating: 0, count: 512)
        let payload = Array("for B only".utf8)
        let back = TrafficSelector(local: w.peer.address, remote: b.localAddress, localPort: 7, remotePort: 5000)
        let r = payload.withUnsafeBytes { p in out.withUnsafeMutableBytes { w.peer.plane.seal(p, selector: back, into: $0) } }
        guard case .packet(let n, _, _) = r else { Issue.record("peer could not seal: \(r)"); return }
        let packet = Array(out[0..<n])
        #expect(open(packet, on: &bPlane) == payload)
        #expect(open(packet, on: &aPlane) == nil)
    }

    /// A peer-initiated push for an address that is not the device's is refused the same way.
    @Test func pushForAnAddressTheDeviceDoesNotOwnIsRefused() throws {
        let w = try World()
        let calls = w.peer.establishCalls
        let foreign = TrafficSelector(local: IPAddress(10, 0, 0, 3), remote: w.peer.address, localPort: 0, remotePort: 7)
        #expect(w.gateway.push(device: w.deviceID, selector: foreign).map(\.type) == [.error])
        #expect(w.gateway.counters.addressRefused == 1 && w.peer.establishCalls == calls)
        let own = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: w.peer.address, localPort: 0, remotePort: 7)
        #expect(w.gateway.push(device: w.deviceID, selector: own).map(\.type) == [.saTransfer])
    }

    /// A row without an address (one from before addresses were recorded) gets no SA at all.
    @Test(arguments: StoreKind.all) func aDeviceWithoutAnAddressOnRecordGetsNoSA(store: StoreKind) throws {
        let w = try World(store: store)
        var dev = try #require(try w.registry.device(id: w.deviceID))
        dev.innerAddress = nil
        try w.registry.save(dev)
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: w.peer.address, localPort: 0, remotePort: 7)
        #expect(w.gateway.push(device: w.deviceID, selector: sel).map(\.type) == [.error])
        #expect(w.gateway.counters.addressRefused == 1)
    }

    @Test(arguments: StoreKind.all) func provisioningNeverHandsOutTheSameAddressTwice(store: StoreKind) throws {
        let w = try World(store: store)
        let pool = try #require(AddressPool(cidr: "10.77.0.0/30"))  // two hosts: .1 and .2
        let first = try w.registry.add(DeviceRecord(id: 2, msisdn: "+2", key: Data(count: 32)), pool: pool)
        #expect(first.innerAddress == IPAddress(10, 77, 0, 1))
        // An explicit address that is taken is refused; so is a pool with nothing left.
        #expect(throws: RegistryError.addressInUse("10.77.0.1")) {
            try w.registry.add(DeviceRecord(id: 3, msisdn: "+3", key: Data(count: 32), innerAddress: IPAddress(10, 77, 0, 1)))
        }
        #expect(throws: RegistryError.addressInUse("10.0.0.2")) {
            try w.registry.add(DeviceRecord(id: 3, msisdn: "+3", key: Data(count: 32), innerAddress: IPAddress(10, 0, 0, 2)))
        }
        let second = try w.registry.add(DeviceRecord(id: 4, msisdn: "+4", key: Data(count: 32)), pool: pool)
        #expect(second.innerAddress == IPAddress(10, 77, 0, 2))
        #expect(throws: RegistryError.poolExhausted) {
            try w.registry.add(DeviceRecord(id: 5, msisdn: "+5", key: Data(count: 32)), pool: pool)
        }
        let addresses = try w.registry.allDevices().compactMap(\.innerAddress)
        #expect(addresses.count == 3 && Set(addresses.map(\.v4)).count == 3)
        #expect(try w.registry.device(id: 4)?.innerAddress == IPAddress(10, 77, 0, 2))
    }

    @Test func addressesAndPoolsParseStrictly() {
        #expect(IPAddress(dottedQuad: "10.77.0.9") == IPAddress(10, 77, 0, 9))
        #expect(IPAddress(10, 77, 0, 9).dottedQuad == "10.77.0.9")
        for bad in ["10.77.0", "10.77.0.256", "10.77.00.1", "10.77.0.1.", "a.b.c.d", "", "10.77.0.-1"] {
            #expect(IPAddress(dottedQuad: bad) == nil, "\(bad)")
        }
        #expect(AddressPool(cidr: "10.77.0.0/16")?.hosts == 0x0A4D_0001...0x0A4D_FFFE)
        #expect(AddressPool(cidr: "10.77.0.1/16") == nil)  // host bits set
        #expect(AddressPool(cidr: "10.77.0.0/31") == nil)
    }
}
