import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// docs/key-delegation.md §3 from the attacker's side: no run of replayed, lost or delayed messages, however long,
/// leaves the device unable to log in, and a replay costs the gateway no write, no answer and no counter.
@Suite(.serialized) struct KeyDelegationLockoutTests {
    static let flood = 100_000

    /// Logs in from a freshly booted client on the same flash and asks for one SA; true when both worked.
    func logsInAgainAndGetsAnSA(_ w: World) throws -> Bool {
        var c = try w.handset()
        var plane = HandsetPlane()
        c.boot(now: 0)
        exchange(&c, w.gateway, plane: &plane)
        guard c.phase == .ready else { return false }
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 0, remotePort: 7), now: 1)
        exchange(&c, w.gateway, plane: &plane)
        return plane.sas.count == 2
    }

    @Test func replayFloodOfOneCapturedUplinkIsFree() throws {
        let w = try World()
        var c = try w.loggedInHandset()
        var plane = HandsetPlane()
        c.requestKey(template: 1, selector: TrafficSelector(local: c.localAddress, remote: w.peer.address,
                                                            localPort: 0, remotePort: 7), now: 1)
        let captured = c.drain()[0]
        #expect(c.deliver(w.gateway.handleUplink(captured, via: .udp), plane: &plane) == [.accepted(.saTransfer)])
        let before = try #require(try w.registry.device(id: w.deviceID))
        let written = try w.registry.rowsWritten()
        let calls = w.peer.establishCalls
        var answers = 0
        for _ in 0..<Self.flood { answers += w.gateway.handleUplink(captured, via: .udp).count }
        #expect(answers == 0)
        #expect(w.gateway.counters.counterErrors == Self.flood && w.gateway.counters.integrityFailures == 0)
        #expect(try w.registry.rowsWritten() == written && w.peer.establishCalls == calls)
        #expect(try w.registry.device(id: w.deviceID) == before)
        #expect(try logsInAgainAndGetsAnSA(w))
    }

    /// The gateway sealed 100,000 messages the handset never got (pushes to a handset that stayed offline,
    /// expired SMS): the old +2^16 bound refused everything after them for ever. A lost downlink changes nothing
    /// but the gateway's sent counter, so the first 1,000 are really sealed and dropped, and the rest are that
    /// counter's advance (sealing 100,000 takes minutes in a debug build; `handset-emu torture --only
    /// downlink-blackout` seals every one).
    @Test func loginWorksAfterLostDownlinks() throws {
        let w = try World()
        _ = try w.loggedInHandset()
        var sealed = 0
        for _ in 0..<1_000 {
            sealed += w.gateway.deleteSA(device: w.deviceID, outboundSPI: 0x100, inboundSPI: 0x101).count
        }
        #expect(sealed == 1_000)
        var dev = try #require(try w.registry.device(id: w.deviceID))
        dev.downCounter += Int64(Self.flood - sealed)
        try w.registry.save(dev)
        #expect(try logsInAgainAndGetsAnSA(w))
    }

    /// The handset sealed 100,000 uplinks that vanished (a black-holed UDP fallback, a fake base station
    /// acknowledging SMS).
    @Test func loginWorksAfterLostUplinks() throws {
        let w = try World()
        var c = try w.loggedInHandset()
        let before = c.state.upCounter
        let data: [UInt8] = Array("lost".utf8)
        for _ in 0..<Self.flood {
            #expect(data.withUnsafeBytes { c.sendSecret(channel: 1, $0) })
            _ = c.drain()
        }
        #expect(c.state.upCounter == before + UInt64(Self.flood))
        #expect(try logsInAgainAndGetsAnSA(w))
    }
}
