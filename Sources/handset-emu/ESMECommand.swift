import ArgumentParser
import Foundation
import SMPP
import SMPPNIO

/// `handset-emu esme`: our SMPP client alone, for checking it against an SMSC we did not write.
struct ESMECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esme",
        abstract: "Bind to an SMSC over SMPP 3.4, send port-addressed binary SMS, print what comes back.",
        discussion: """
        Binds as a transceiver, queues each --data as binary SMS (data_coding 4,
        UDHI, 16-bit ports, concatenated with IEI 0x08 when long), waits until the
        SMSC acknowledged every part and --receive deliver_sm arrived, then unbinds.
        stdout: one JSON line per event (bound, deliver) and a final "done" line
        with the counters. Exit status 1 when something was not done in time.
        """)

    @Option(help: "SMSC host (IPv4).") var host = "127.0.0.1"
    @Option(help: "SMSC port.") var port: Int
    @Option(name: .customLong("system-id")) var systemID = "handset-gw"
    @Option var password = ""
    @Option(help: "source_addr of our submits (\"+\" first: international).") var source = ""
    @Option(help: "destination_addr for --data.") var to = ""
    @Option(help: "Payload in hex; repeat for several messages.") var data: [String] = []
    @Option(name: .customLong("port-dst")) var portDst = 16400
    @Option(name: .customLong("port-src")) var portSrc = 16400
    @Option(help: "Number of deliver_sm (not receipts) to wait for.") var receive = 0
    @Option var window = 8
    @Option(name: .customLong("enquire-link"), help: "Seconds between enquire_link.") var enquireLink: Double = 30
    @Option(help: "Seconds to wait for everything.") var timeout: Double = 10
    @Flag(help: "Use the swift-nio ESME (the gateway daemon's) instead of the threaded one.") var nio = false

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1...65535") }
        if !data.isEmpty, to.isEmpty { throw ValidationError("--data needs --to") }
    }

    func run() throws {
        let payloads = try data.map { try hexArgument($0, name: "--data") }
        var config = ESMEConfig(host: host, port: port, systemID: systemID, password: password)
        config.sourceAddr = source
        config.portDst = portDst
        config.portSrc = portSrc
        config.window = window
        config.enquireLinkInterval = enquireLink
        let onDeliver: @Sendable (InboundSMS) -> Void = { m in
            var line = "{\"event\":\"deliver\",\"from\":\"\(m.originator)\",\"to\":\"\(m.destination)\","
            line += "\"dcs\":\(m.dataCoding),\"data\":\"\(hexString(m.payload))\""
            if let d = m.udh.portDst { line += ",\"port-dst\":\(d)" }
            if let s = m.udh.portSrc { line += ",\"port-src\":\(s)" }
            if let r = m.udh.concatRef, let t = m.udh.concatTotal, let q = m.udh.concatSeq {
                line += ",\"concat-ref\":\(r),\"concat-total\":\(t),\"concat-seq\":\(q)"
            }
            emitLine(line + "}")
        }
        let client: any ESMELink = nio ? NIOESMEClient(config: config, onDeliver: onDeliver)
                                       : ESMEClient(config: config, onDeliver: onDeliver)
        client.start()
        let deadline = Date().addingTimeInterval(timeout)
        while !client.isBound, Date() < deadline { usleep(10_000) }
        if client.isBound { emitLine("{\"event\":\"bound\"}") }
        var parts = 0
        for p in payloads { parts += try client.send(to: to, payload: p) }
        func finished() -> Bool {
            let c = client.counters
            return c.submitsAcked + c.submitsFailed >= parts && c.delivered >= receive
        }
        while !finished(), Date() < deadline { usleep(10_000) }
        let ok = client.isBound && finished() && client.counters.submitsFailed == 0
        client.stop()
        let c = client.counters
        emitLine("{\"event\":\"done\",\"ok\":\(ok),\"parts\":\(parts),\"acked\":\(c.submitsAcked),\"failed\":\(c.submitsFailed),"
              + "\"throttled\":\(c.throttled),\"resent\":\(c.resent),\"delivered\":\(c.delivered),"
              + "\"receipts\":\(c.deliveryReceipts),\"malformed\":\(c.malformedTotal),\"nacks-sent\":\(c.genericNacksSent),"
              + "\"binds\":\(c.binds),\"bind-failures\":\(c.bindFailures),\"reconnects\":\(c.reconnects),"
              + "\"connect-failures\":\(c.connectFailures)}")
        if !ok { throw ExitCode(1) }
    }
}

/// One JSON line on stdout, unbuffered: a test reads it while we still run.
private func emitLine(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
