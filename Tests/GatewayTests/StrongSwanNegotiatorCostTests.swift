import Foundation
import Gateway
import HandsetCore
import ProxyIKE
import Testing

/// What the proxy charon costs (issue 15, BENCHMARKS.md): negotiation latency without SMS, negotiations the
/// gateway sustains side by side, and the proxy charon's memory with 1,000 devices loaded and negotiated, against
/// the lab's stock server (scripts/ike-lab). Prints its figures; checks that every negotiation succeeded.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct StrongSwanNegotiatorCostTests {
    static let service = IPAddress(10, 200, 0, 1)
    static let devices = Int(ProcessInfo.processInfo.environment["IKE_COST_DEVICES"] ?? "") ?? 1000

    /// VmRSS of a process, KiB.
    static func rss(_ pid: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count - 1) * p))]
    }

    @Test func costOfNegotiatingForManyDevices() throws {
        // All devices reach the lab's server from one address; in a real network each has its own. charon's default
        // per-address half-open limit (5) would measure the server's DoS guard, not the gateway.
        setenv("IKE_LAB_BLOCK_THRESHOLD", ProcessInfo.processInfo.environment["IKE_LAB_BLOCK_THRESHOLD"] ?? "1000", 1)
        defer { unsetenv("IKE_LAB_BLOCK_THRESHOLD") }
        let lab = try IKELab()
        defer { lab.down() }
        let registry = try DeviceRegistry(path: lab.dir.appendingPathComponent("reg.sqlite").path,
                                          kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("reg.kek").path))
        let n = Self.devices
        let ids = (0..<n).map { UInt64(0x10000 + $0) }
        for (i, id) in ids.enumerated() {
            let identity = String(format: "%016llx@handset.invalid", id), psk = String(format: "cost-psk-%016llx-0123456789abcdef", id)
            var d = DeviceRecord(id: id, msisdn: "+1556\(String(format: "%07d", i))", key: Data(count: 32),
                                 innerAddress: IPAddress(10, 201, UInt8(1 + i / 250), UInt8(1 + i % 250)))
            d.ikeIdentity = identity
            d.ikePSK = Data(psk.utf8)
            try registry.add(d)
            try lab.serverLoadPSK(identity: identity, psk: psk)
        }
        var c = StrongSwanNegotiator.Configuration(
            viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
            ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
        c.timeout = 10
        if let m = ProcessInfo.processInfo.environment["IKE_COST_MAX_CONCURRENT"].flatMap({ Int($0) }) { c.maxConcurrent = m }
        let negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
        defer { negotiator.stop() }
        let pid = try String(contentsOfFile: lab.dir.appendingPathComponent("proxy.pid").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let rssIdle = Self.rss(pid)
        var t0 = Date()
        try negotiator.start(devices: ids)
        let loadSeconds = Date().timeIntervalSince(t0)
        let rssLoaded = Self.rss(pid)

        @Sendable func establish(_ i: Int) -> (Bool, Double) {
            let inner = IPAddress(10, 201, UInt8(1 + i / 250), UInt8(1 + i % 250))
            let sel = TrafficSelector(local: inner, remote: Self.service, localPort: 0, remotePort: 7)
            let s = Date()
            let r = negotiator.establish(device: ids[i], handset: inner, selector: sel, template: 1, reused: false)
            if case .success = r { return (true, Date().timeIntervalSince(s)) }
            return (false, Date().timeIntervalSince(s))
        }

        // One at a time: the latency IKE adds to an SA's delivery, SMS excluded (IKE_SA_INIT + IKE_AUTH + CHILD_SA).
        let serial = min(50, n)
        var lat: [Double] = []
        for i in 0..<serial {
            let (ok, t) = establish(i)
            #expect(ok, "device \(i)")
            lat.append(t)
        }
        print("IKE cost: at most \(c.maxConcurrent) negotiations in flight")
        print(String(format: "IKE cost: serial establish (new IKE_SA), %d devices: p50 %.1f ms, p90 %.1f ms, max %.1f ms",
                     serial, Self.percentile(lat, 0.5) * 1000, Self.percentile(lat, 0.9) * 1000, (lat.max() ?? 0) * 1000))
        // The rest side by side, in waves of growing width: negotiations per second the gateway sustains.
        var next = serial
        for width in [8, 32, 64] where next < n {
            let count = min(n - next, width * 8)
            let base = next
            next += count
            let tally = Tally()
            let queue = OperationQueue()
            queue.maxConcurrentOperationCount = width
            t0 = Date()
            for i in base..<(base + count) {
                queue.addOperation { tally.add(establish(i)) }
            }
            queue.waitUntilAllOperationsAreFinished()
            let wall = Date().timeIntervalSince(t0)
            let (times, failed) = tally.result
            print(String(format: "IKE cost: %d concurrent, %d establishes in %.2f s = %.0f/s, p50 %.1f ms, p99 %.1f ms, failed %d",
                         width, count, wall, Double(count) / wall, Self.percentile(times, 0.5) * 1000,
                         Self.percentile(times, 0.99) * 1000, failed))
            #expect(failed == 0, "\(failed) of \(count) failed at width \(width)")
        }
        // Whatever remains, 32 at a time, so every device has an IKE_SA for the memory figure.
        if next < n {
            let queue = OperationQueue()
            queue.maxConcurrentOperationCount = 32
            let tally = Tally()
            for i in next..<n { queue.addOperation { tally.add(establish(i)) } }
            queue.waitUntilAllOperationsAreFinished()
            #expect(tally.result.failed == 0)
        }
        let rssNegotiated = Self.rss(pid)
        let sas = try lab.serverSAs().count
        print(String(format: "IKE cost: proxy charon RSS %d KiB idle, %d KiB with %d devices loaded (%.1f s to load), "
                     + "%d KiB with %d IKE_SAs + CHILD_SAs (server holds %d): %.0f KiB per 1,000 devices",
                     rssIdle, rssLoaded, n, loadSeconds, rssNegotiated, n, sas,
                     Double(rssNegotiated - rssIdle) * 1000 / Double(n)))
        #expect(sas == n)
        #expect(negotiator.counters.established == n)
    }
}

/// Latencies of the successful negotiations and the count of failed ones, from many threads.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var times: [Double] = []
    private var failed = 0
    func add(_ r: (Bool, Double)) { lock.withLock { if r.0 { times.append(r.1) } else { failed += 1 } } }
    var result: (times: [Double], failed: Int) { lock.withLock { (times, failed) } }
}
