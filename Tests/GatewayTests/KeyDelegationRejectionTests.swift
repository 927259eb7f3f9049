import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// Forged, replayed, reordered, truncated and wrong-device messages: each is rejected and counted, and the
/// handset's persisted state (flash) and SA table stay exactly as they were.
@Suite struct KeyDelegationRejectionTests {
    /// A logged-in handset and two valid downlink messages the gateway sent it (not yet delivered).
    func withLoggedIn(_ body: (World, inout KeyDelegationClient<FlashStore>, inout HandsetPlane, [Downlink]) throws -> Void) throws {
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        let sel = TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 0, remotePort: 7)
        let msgs = w.gateway.push(device: w.deviceID, selector: sel) + w.gateway.push(device: w.deviceID, selector: sel)
        try body(w, &c, &plane, msgs)
    }

    @Test func forgedAtEveryByteIsRejected() throws {
        try withLoggedIn { w, c, plane, msgs in
        let flashBefore = w.flash.image
        let original = msgs[0].bytes
        for i in original.indices {
            var forged = original
            forged[i] ^= 0x01
            let r = forged.withUnsafeBytes { c.receive($0, now: 0, plane: &plane) }
            #expect(r != .accepted(.saTransfer), "flip at byte \(i) accepted")
        }
        #expect(w.flash.image == flashBefore && plane.sas.count == 0)
        // A flip that lowers the counter is refused on the clear header, before the AEAD.
        #expect(c.counters.integrityFailures + c.counters.malformed + c.counters.unknownEpoch + c.counters.counterLow
                == UInt64(original.count))
        // The untouched message still works afterwards: nothing was consumed.
        #expect(c.deliver([msgs[0]], plane: &plane) == [.accepted(.saTransfer)])
        }
    }

    @Test func replayedAndReorderedAreRejected() throws {
        try withLoggedIn { w, c, plane, msgs in
        #expect(c.deliver([msgs[1]], plane: &plane) == [.accepted(.saTransfer)])
        let flash = w.flash.image
        let sas = plane.sas.count
        #expect(c.deliver([msgs[1]], plane: &plane) == [.rejected(.counterLow)])  // replay
        #expect(c.deliver([msgs[0]], plane: &plane) == [.rejected(.counterLow)])  // older one, late
        #expect(w.flash.image == flash && plane.sas.count == sas)
        #expect(c.counters.counterLow == 2)
        #expect(c.outbox.isEmpty == false)  // only the one SA ack from the accepted message
        _ = c.drain()
        #expect(c.outbox.isEmpty)
        }
    }

    @Test func truncatedAtEveryLengthIsRejected() throws {
        try withLoggedIn { w, c, plane, msgs in
        let flash = w.flash.image
        for n in 0..<msgs[0].bytes.count {
            let r = Array(msgs[0].bytes[0..<n]).withUnsafeBytes { c.receive($0, now: 0, plane: &plane) }
            #expect(r == .rejected(.badMessage) || r == .rejected(.integrityFailure), "length \(n): \(r)")
        }
        #expect(w.flash.image == flash && plane.sas.count == 0)
        }
    }

    @Test func messageForAnotherDeviceIsRejected() throws {
        try withLoggedIn { w, c, plane, _ in
        // A second device, same gateway: its messages must not open on ours.
        var key = [UInt8](repeating: 0xEE, count: 32)
        try w.registry.add(DeviceRecord(id: 42, msisdn: "+15550002", key: Data(key), epoch: Int(c.state.epoch), downCounter: 1000))
        key = []
        let foreign = w.gateway.push(device: 42, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address, localPort: 0, remotePort: 7))
        let flash = w.flash.image
        #expect(c.deliver(foreign, plane: &plane) == [.rejected(.integrityFailure)])
        #expect(w.flash.image == flash && plane.sas.count == 0)
        }
    }

    @Test func gatewayRejectsForgedReplayedAndUnknownUplinks() throws {
        let w = try World()
        var c = try w.handset()
        var plane = handsetPlane()
        c.boot(now: 0)
        let login = c.drain()[0]
        var forged = login
        forged[forged.count - 1] ^= 0x80
        #expect(w.gateway.handleUplink(forged).isEmpty)
        #expect(w.gateway.counters.integrityFailures == 1)
        let dev = try w.registry.device(id: w.deviceID)
        #expect(dev?.upCounter == 0)
        let first = w.gateway.handleUplink(login)
        #expect(first.map(\.type) == [.loginAck])
        // A replay is refused on its counter, before any crypto, and answered with nothing: no SMS, no write.
        let written = try w.registry.rowsWritten()
        #expect(w.gateway.handleUplink(login).isEmpty)
        #expect(w.gateway.counters.counterErrors == 1 && w.gateway.counters.integrityFailures == 1)
        #expect(try w.registry.rowsWritten() == written)
        #expect(c.deliver(first, plane: &plane) == [.accepted(.loginAck)])
        var unknown = login
        unknown[9] ^= 0xFF  // device id
        #expect(w.gateway.handleUplink(unknown).isEmpty && w.gateway.counters.unknownDevice == 1)
    }
}
