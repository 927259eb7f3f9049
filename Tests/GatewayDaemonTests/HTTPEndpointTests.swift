import Foundation
import Gateway
@testable import GatewayDaemon
import Logging
import Testing

@Suite struct HTTPEndpointTests {
    /// One HTTP/1.1 request over a plain socket; returns the status code and the body.
    static func get(_ port: Int, _ path: String, method: String = "GET") throws -> (Int, String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(rc == 0)
        let req = Array("\(method) \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let text = String(decoding: out, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return (status, body)
    }

    @Test func metricsHealthAndReadiness() async throws {
        let metrics = GatewayMetrics()
        let ready = LockedBox(false)
        let http = HTTPEndpoint(host: "127.0.0.1", port: 0, metrics: metrics, logger: Logger(label: "test"),
                                ready: { ready.get() })
        let port = try http.bind()
        #expect(try Self.get(port, "/health").0 == 200)
        #expect(try Self.get(port, "/ready").0 == 503)
        ready.set(true)
        #expect(try Self.get(port, "/ready").0 == 200)
        #expect(try Self.get(port, "/nope").0 == 404)
        #expect(try Self.get(port, "/metrics", method: "POST").0 == 405)

        var c = GatewayCounters()
        c.logins = 3
        c.integrityFailures = 1
        metrics.observe(c)
        c.logins = 5
        metrics.observe(c)
        let (status, body) = try Self.get(port, "/metrics")
        #expect(status == 200)
        #expect(body.contains("\ngateway_logins_total 5\n"))
        #expect(body.contains("\ngateway_integrity_failures_total 1\n"))
        // Every GatewayCounters field is exported, by its snake_case name.
        for child in Mirror(reflecting: GatewayCounters()).children {
            let name = "gateway_" + MetricName.snakeCase(child.label!) + "_total"
            #expect(body.contains("\n\(name) "), "\(name) missing")
        }
        #expect(body.contains("gateway_by_udp_total") && body.contains("gateway_smpp_unexpected_pdus_total"))
        try? await http.group.shutdownGracefully()
    }
}
