import Foundation
import EmulatorSupport
import Gateway
import HandsetCore

/// The two lockout faults of docs/key-delegation.md §3: a flood of one captured uplink, and a long run of lost
/// downlinks. After each the device must log in again (checked by the power cut's login) and get an SA.
extension TortureCampaign {
    static let floodCopies = 100_000
    static let blackoutDownlinks: Int64 = 100_000
    /// Of the blackout's downlinks, this many are really sealed and dropped; the rest are the sent counter's advance.
    static let blackoutSealed = 300

    /// Sends the newest UDP-allowed uplink the handset sent to the gateway's UDP port 100,000 times. The gateway
    /// must answer none of them and write nothing; then a power cut, a login and a new flow.
    func replayFlood() throws -> Bool {
        if lock.withLock({ newestUDPUplink }) == nil { _ = drive(.keyRequest) }
        guard let captured = lock.withLock({ newestUDPUplink }) else { return false }
        let g: Gateway = world.gateway, udp: GatewayUDPListener = world.kdUDP  // in-process: torture never runs the daemon
        let before = (stats: udp.stats, refused: g.counters.counterErrors,
                      device: try? world.registry.device(id: world.deviceID))
        var dst = sockaddr_in()
        dst.sin_family = sa_family_t(AF_INET)
        dst.sin_addr.s_addr = inet_addr("127.0.0.1")
        dst.sin_port = udp.port.bigEndian
        let datagram = [UInt8](repeating: 0, count: KD.nonESPMarkerLength) + captured
        for i in 0..<Self.floodCopies {
            _ = datagram.withUnsafeBytes { b in
                withUnsafePointer(to: &dst) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(replayFD, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                } }
            }
            // Bursts of 100 (a default socket buffer holds about 250 such datagrams), each once the listener has
            // caught up, so the copies are handled rather than dropped.
            if i % 100 == 99 {
                for _ in 0..<2_000 where udp.stats.received - before.stats.received < i - 100 { usleep(500) }
            }
        }
        // Wait until the listener has drained its socket.
        var seen = udp.stats.received
        for _ in 0..<40 {
            Thread.sleep(forTimeInterval: 0.05)
            let now = udp.stats.received
            if now == seen { break }
            seen = now
        }
        let handled = udp.stats.received - before.stats.received
        floodCopiesHandled += handled
        FloodVerdict.check(ledger, handled: handled, answered: udp.stats.answered - before.stats.answered,
                           refused: g.counters.counterErrors - before.refused, sentBefore: before.device?.downCounter,
                           sentAfter: (try? world.registry.device(id: world.deviceID))?.downCounter)
        try powerCut()
        return drive(.keyRequest)
    }

    /// The handset is out of reach while the gateway sends: 300 downlinks really sealed and dropped, then the sent
    /// counter moved on to 100,000 in all. The handset must still take the next downlink, and log in after a cut.
    func downlinkBlackout() throws -> Bool {
        let id = world.deviceID
        let start = (try? world.registry.device(id: id))?.downCounter ?? 0
        for i in 0..<Self.blackoutSealed {
            _ = world.gateway.deleteSA(device: id, outboundSPI: 0xB1AC_0000 | UInt32(i), inboundSPI: 0xB1AD_0000 | UInt32(i))
        }
        let sealed = ((try? world.registry.device(id: id))?.downCounter ?? 0) - start
        try world.registry.skipDownlinks(device: id, Self.blackoutDownlinks - sealed)
        blackoutLost += Int((try? world.registry.device(id: id))?.downCounter ?? 0) - Int(start)
        let pushed = drive(.push)
        try powerCut()
        return pushed && drive(.keyRequest)
    }
}

/// The replay-flood verdict, apart so that `--self-check` can feed it an answered flood. One copy may be a first
/// delivery (its original was lost), so at most one is answered; every other copy is refused on its counter.
enum FloodVerdict {
    static func check(_ ledger: TortureLedger, handled: Int, answered: Int, refused: Int, sentBefore: Int64?,
                      sentAfter: Int64?) {
        let moved = (sentAfter ?? -1) - (sentBefore ?? 0)
        ledger.check(.replayUnanswered, answered <= 1 && (0...1).contains(moved) && refused >= handled - 1,
                     "\(handled) copies handled: \(answered) answered, \(refused) refused on their counter, gateway sent counter moved \(moved)")
    }
}
