import ArgumentParser
import Foundation
import GatewayDaemon
import Logging

@main
struct HandsetGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handset-gateway",
        abstract: "The key-delegation gateway as a daemon: SMS over SMPP 3.4, UDP, metrics and health over HTTP.",
        discussion: """
            Reads FILE (`key = value` lines, `#` comments; docs/gateway.md), validates all of it, then binds to \
            the SMS centre as an SMPP transceiver and serves until SIGTERM or SIGINT, when it drains: new \
            deliveries are refused with a temporary error, messages in hand finish, queued downlinks go out, it \
            unbinds and closes the registry, and exits 0.

            Keys:
            \(DaemonConfigHelp.keys)

            HTTP: GET /metrics (Prometheus), /health (200 while the process runs), /ready (200 when SMPP is \
            bound and the registry open, else 503); with admin = on (loopback only) GET /admin/device/ID, \
            POST /admin/push and /admin/delete (docs/gateway.md, Admin routes).

            Exit status: 0 after a clean drain; 1 when the config or a start step fails (the message names the \
            file, line and key).
            """)

    @Option(name: .customLong("config"), help: ArgumentHelp("The daemon's configuration file.", valueName: "FILE"))
    var config: String

    @Flag(name: .customLong("check-config"), help: "Validate FILE, print the result, and exit (0: valid, 1: not).")
    var checkConfig = false

    func run() async throws {
        let c: DaemonConfig
        do { c = try DaemonConfig.load(path: config) } catch {
            FileHandle.standardError.write(Data("handset-gateway: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if checkConfig {
            print("\(config): valid")
            return
        }
        let level = c.logLevel, format = c.logFormat
        LoggingSystem.bootstrap { LineLogHandler(label: $0, level: level, format: format) }
        let log = Logger(label: "handset-gateway")
        let daemon: GatewayDaemon
        do { daemon = try GatewayDaemon(config: c, logger: log) } catch {
            log.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        try await daemon.run()
    }
}

enum DaemonConfigHelp {
    static var keys: String {
        DaemonConfig.keys.map { "  \($0.key): \($0.allowed)" }.joined(separator: "\n")
    }
}
