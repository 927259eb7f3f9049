import Foundation
import Gateway
import GRDB
import Testing
@testable import HandsetCore

/// Issue 12 item 9: a registry failure stops a message before it is acted on or answered, and no lock is held
/// across the peer or a fetch.
@Suite struct GatewayStoreAndLockTests {
    @Test(arguments: StoreKind.all) func aFailedRegistryWriteStopsTheMessageUnanswered(store: StoreKind) throws {
        let w = try World(store: store)
        var c = try w.loggedInHandset()
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 0, remotePort: 7), now: 1)
        let request = c.drain()[0]
        // Another connection makes every device update fail, as a full disk or an I/O error would.
        try w.failDeviceUpdates(true)
        let before = try #require(try w.registry.device(id: w.deviceID))
        let calls = w.peer.establishCalls
        #expect(w.gateway.handleUplink(request).isEmpty)
        #expect(w.gateway.counters.storeFailures == 1)
        #expect(w.peer.establishCalls == calls)  // not acted on
        #expect(try w.registry.device(id: w.deviceID)?.upCounter == before.upCounter)
        // Its counter was never accepted, so the same message works once the store does.
        try w.failDeviceUpdates(false)
        #expect(w.gateway.handleUplink(request).map(\.type) == [.saTransfer])
    }

    @Test(arguments: StoreKind.all) func aSlowFetchForOneDeviceDoesNotHoldUpAnotherDevicesLogin(store: StoreKind) throws {
        let w = try World(store: store)
        var a = try w.loggedInHandset()
        // Device B, logging in while A's fetch is in progress.
        let flash = Flash()
        let key = [UInt8](repeating: 0x5B, count: 32)
        try w.registry.add(DeviceRecord(id: 0xB, msisdn: "+15550011", key: Data(key), innerAddress: IPAddress(10, 77, 0, 11)))
        var st = FlashStore(flash: flash)
        try st.save(KeyState(deviceID: 0xB, key: key.withUnsafeBytes { KeyBytes($0) }))
        var b = try KeyDelegationClient(store: FlashStore(flash: flash))
        b.localAddress = IPAddress(10, 77, 0, 11)

        let inFetch = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        w.peer.duringFetch = {
            inFetch.signal()
            // Held until B has logged in; a gateway holding its lock across the fetch would keep B out till timeout.
            outcome.released = release.wait(timeout: .now() + 10) == .success
        }
        _ = Array("https://example.org/".utf8).withUnsafeBytes { a.fetch($0) }
        let fetchRequest = a.drain()[0]
        let answered = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            outcome.answers = w.gateway.handleUplink(fetchRequest).map(\.type)
            answered.signal()
        }
        #expect(inFetch.wait(timeout: .now() + 10) == .success)
        var plane = HandsetPlane()
        b.boot(now: 0)
        exchange(&b, w.gateway, plane: &plane)
        #expect(b.phase == .ready)
        release.signal()
        #expect(answered.wait(timeout: .now() + 20) == .success)
        #expect(outcome.released && outcome.answers == [.fetchResponse])
    }
}

/// Two gateway processes sharing one registry (two connections here, each its own store): every counter is spent
/// once.
@Suite struct SharedRegistryTests {
    func second(_ w: World) throws -> Gateway {
        Gateway(registry: try w.openAnother(), negotiator: TestPeer(), services: nil)
    }

    @Test(arguments: StoreKind.all) func twoGatewaysNeverSealUnderOneCounter(store: StoreKind) throws {
        let w = try World(store: store)
        _ = try w.loggedInHandset()
        let other = try second(w)
        let start = try #require(try w.registry.device(id: w.deviceID)).downCounter
        let counters = Outcome()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let g = i == 0 ? w.gateway : other
            for n in 0..<150 {
                for d in g.deleteSA(device: w.deviceID, outboundSPI: UInt32(n), inboundSPI: UInt32(n)) {
                    let h = d.bytes.withUnsafeBytes { KDHeader.parse($0, direction: .down) }
                    counters.add(h?.counter ?? 0)
                }
            }
        }
        #expect(counters.seen.count == 300 && Set(counters.seen).count == 300)
        #expect(try w.registry.device(id: w.deviceID)?.downCounter == start + 300)
    }

    @Test(arguments: StoreKind.all) func oneUplinkDeliveredToTwoGatewaysAtOnceIsAcceptedOnce(store: StoreKind) throws {
        let w = try World(store: store)
        var c = try w.loggedInHandset()
        let other = try second(w)
        let answers = Outcome()
        for n in 0..<6 {  // within the handset's 8 pending requests (answers are not delivered back)
            c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                                localPort: UInt16(1000 + n), remotePort: 7), now: 1)
            let up = c.drain()[0]
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                answers.add(UInt64((i == 0 ? w.gateway : other).handleUplink(up).count))
            }
        }
        #expect(answers.seen.reduce(0, +) == 6)  // one answer per uplink, from whichever gateway won
    }
}

final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [UInt64] = []
    var seen: [UInt64] { lock.withLock { values } }
    func add(_ v: UInt64) { lock.withLock { values.append(v) } }
    var released = false
    var answers: [KDMessageType] = []
}
