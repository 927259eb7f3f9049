import CoreMetrics
import Foundation
import Gateway
import Logging

/// The back-end services the daemon offers handsets over the trusted bearer (docs/key-delegation.md): secret data
/// and https fetches. Both run on the device's worker, never holding a lock, and each failure is counted
/// (`gateway_service_failures_total{service,why}`) and logged without the data.
final class DaemonServices: TrustedServices, @unchecked Sendable {
    let secretMode: DaemonConfig.SecretService
    let fetchMode: DaemonConfig.FetchService
    let backend: BackendSocketClient?
    let metrics: GatewayMetrics
    let log: Logger
    /// Where curl is; a test may point it elsewhere.
    var curl = "/usr/bin/curl"

    init(config: DaemonConfig, metrics: GatewayMetrics, logger: Logger) {
        secretMode = config.services.secret
        fetchMode = config.services.fetch
        backend = config.services.backendSocket.map { BackendSocketClient(path: $0, timeout: config.services.backendTimeout) }
        self.metrics = metrics
        log = logger
    }

    func secret(device: UInt64, channel: UInt16, data: [UInt8]) -> [UInt8]? {
        switch secretMode {
        case .off:
            failed("secret", "disabled", device: device)
            return nil
        case .receipt:
            return Array("received \(data.count) secret bytes on channel \(channel)".utf8)
        case .socket:
            guard let backend else { return nil }
            var r = BackendRequest(op: .secret, device: device)
            r.channel = channel
            r.data = Backend.hex(data)
            switch backend.call(r) {
            case .failure(let e):
                failed("secret", e == .timeout ? "timeout" : "unreachable", device: device)
                return nil
            case .success(let answer):
                guard answer.ok else { failed("secret", "refused", device: device); return nil }
                guard let hex = answer.reply else { return nil }  // the back end chose not to answer
                guard let reply = Backend.bytes(hex) else { failed("secret", "malformed", device: device); return nil }
                return reply
            }
        }
    }

    /// https GET through curl (https only, redirects included; `file://` and the like never reach curl), bounded
    /// in time and size. A failure is HTTP status 502 to the handset, with curl's exit status in the body.
    func fetch(device: UInt64, url: String) -> (status: UInt16, body: [UInt8]) {
        guard case .https(let caFile, let timeout) = fetchMode else {
            failed("fetch", "disabled", device: device)
            return (502, Array("no fetch service".utf8))
        }
        guard let u = URLComponents(string: url), u.scheme?.lowercased() == "https", let host = u.host, !host.isEmpty else {
            failed("fetch", "not_https", device: device)
            return (400, Array("only https:// URLs may be fetched".utf8))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: curl)
        var args = ["-sS", "--max-time", "\(Int(timeout))", "--max-filesize", "1048576", "--proto", "=https",
                    "--proto-redir", "=https", "-w", "\n%{http_code}"]
        if let caFile { args += ["--cacert", caFile] }
        p.arguments = args + ["--url", url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        guard (try? p.run()) != nil else {
            failed("fetch", "no_curl", device: device)
            return (502, Array("fetch tool missing".utf8))
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let code = UInt16(lines.popLast() ?? "") ?? 0
        guard p.terminationStatus == 0, code != 0 else {
            failed("fetch", "upstream", device: device)
            return (502, Array("fetch failed (curl exit \(p.terminationStatus))".utf8))
        }
        return (code, Array(lines.joined(separator: "\n").utf8))
    }

    private func failed(_ service: String, _ why: String, device: UInt64) {
        metrics.countServiceFailure(service: service, why: why)
        log.notice("\(service) service failed", metadata: ["device": "\(device)", "why": "\(why)"])
    }
}

extension GatewayMetrics {
    /// A secret or fetch the daemon could not serve, by service and reason.
    func countServiceFailure(service: String, why: String) {
        CoreMetrics.Counter(label: "gateway_service_failures_total", dimensions: [("service", service), ("why", why)],
                            factory: factory).increment()
    }
}
