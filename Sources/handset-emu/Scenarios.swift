import Foundation
import EmulatorSupport
import Gateway
import HandsetCore

struct ScenarioFailure: Error, CustomStringConvertible {
    var description: String
    init(_ s: String) { description = s }
}

/// One step of the demo. Each drives the real firmware process through its app interface and the network side,
/// and checks what happened; it returns a one-line detail or throws what went wrong.
struct Scenario: Sendable {
    let name: String
    let summary: String
    let run: @Sendable (ScenarioContext) throws -> String

    static let all: [Scenario] = [
        Scenario(name: "login", summary: "login with device-key rotation", run: login),
        Scenario(name: "handset-initiated", summary: "policy says protect, no SA: key request by SMS, then ESP", run: handsetInitiated),
        Scenario(name: "peer-initiated", summary: "the opposite party starts; the gateway pushes the SA", run: peerInitiated),
        Scenario(name: "secret-sms", summary: "secret data travels only over SMS", run: secretOverSMS),
        Scenario(name: "sa-cache", summary: "a party contacted before is reused, with fresh SA keys", run: saCache),
        Scenario(name: "secure-fetch", summary: "the gateway fetches https for the handset over the trusted bearer", run: secureFetch),
        Scenario(name: "rekey", summary: "soft expiry under traffic: make-before-break rekey, nothing lost", run: rekey),
        Scenario(name: "power-cut", summary: "kill -9 at every step of the login rotation; both sides still agree", run: powerCut),
        Scenario(name: "kd-over-udp", summary: "SMS unavailable: the SA comes by UDP, secret data is refused", run: kdOverUDP),
        Scenario(name: "sa-delete", summary: "the gateway deletes a pair: both halves go, the next datagram gets a fresh SPI", run: saDelete),
        Scenario(name: "read-retry", summary: "a pushed SA whose +CMGR lost its final result is read again next tick", run: readRetry),
    ]

    static func named(_ n: String) -> Scenario? { all.first { $0.name == n } }
}

struct ScenarioContext {
    let world: EmulatedWorld
    let rate: Double
    let duration: Double
    let firmware: String
    let qemu: String?
    var app: AppClient { world.app }

    func within(_ seconds: Double, _ what: String, _ cond: () -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if cond() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ScenarioFailure("timed out after \(Int(seconds)) s waiting for \(what)")
    }

    func expect(_ op: UInt8, _ what: String, timeout: Double = 60, _ match: (AppClient.Message) -> Bool = { _ in true }) throws -> AppClient.Message {
        guard let m = app.wait(timeout: timeout, { $0.op == op && match($0) }) else {
            throw ScenarioFailure("timed out waiting for \(what)")
        }
        return m
    }

    /// The app events (op 0x84) the firmware sent since the last call, by name; the others stay queued.
    func firmwareEvents() -> [String] {
        let names = [1: "sent", 2: "waiting-for-key", 3: "discarded", 4: "clear-refused", 5: "sa-installed", 6: "failed",
                     7: "sms-unavailable"]
        var seen: [String] = []
        while let m = app.wait(timeout: 0, { $0.op == 0x84 }) {
            let code = Int(m.body.first ?? 0)
            seen.append(names[code] ?? "event \(code)")
        }
        return seen
    }

    /// An echo round trip through ESP; returns the reply.
    func echo(_ text: String, port: UInt16 = EmulatedPeer.echoPort, sport: UInt16 = 5000, timeout: Double = 60) throws -> String {
        app.datagram(to: port, from: sport, Array(text.utf8))
        let m = try expect(0x81, "the reply to '\(text)'", timeout: timeout) { m in
            m.body.count >= 8 && String(decoding: m.body[8...], as: UTF8.self).contains(text)
        }
        return String(decoding: m.body[8...], as: UTF8.self)
    }
}

extension Scenario {
    static func login(_ c: ScenarioContext) throws -> String {
        let start = Date()
        try c.within(90, "the gateway to confirm a rotated device key") { c.world.gw.counters.rotations >= 1 }
        let dev = try c.world.gw.deviceState(c.world.deviceID)
        guard let dev, dev.epoch >= 1, !dev.pendingKey else { throw ScenarioFailure("registry not at a confirmed epoch") }
        c.app.hello()
        return String(format: "device key rotated to epoch %d in %.1f s", dev.epoch, Date().timeIntervalSince(start))
    }

    static func handsetInitiated(_ c: ScenarioContext) throws -> String {
        // Run alone (--scenario handset-initiated), nothing has waited for the firmware to come up yet.
        try c.within(90, "the firmware to log in") { c.world.gw.counters.rotations >= 1 }
        let before = c.world.gw.counters.saDelivered
        c.app.datagram(to: EmulatedPeer.echoPort, from: 5000, Array("ping".utf8))
        _ = try c.expect(0x84, "'waiting for key'") { $0.body.first == 2 }
        _ = try c.expect(0x84, "'SA installed'") { $0.body.first == 5 }
        _ = try c.expect(0x81, "the echo") { String(decoding: $0.body.dropFirst(8), as: UTF8.self) == "ping" }
        guard c.world.gw.counters.saDelivered > before else { throw ScenarioFailure("no SA was delivered") }
        guard !c.world.capture.contains(Array("ping".utf8)) else { throw ScenarioFailure("'ping' seen in clear on the Internet side") }
        return "key request by SMS, SA pair installed, echo over ESP-in-UDP"
    }

    static func peerInitiated(_ c: ScenarioContext) throws -> String {
        c.app.hello()
        let w = c.world
        let sel = TrafficSelector(local: w.handsetAddress, remote: w.peer.address, localPort: 9000, remotePort: 0)
        try w.gw.push(device: w.deviceID, selector: sel)
        // The handset's dummy packet on the pushed pair tells the peer where it is and that it holds the keys.
        try c.within(60, "the handset to announce the pushed pair") { w.peer.canSend(to: w.handsetAddress, port: 9000, from: 7777) }
        let text = "hello from the opposite party"
        guard w.peer.send(Array(text.utf8), to: w.handsetAddress, port: 9000, from: 7777) else {
            throw ScenarioFailure("the peer could not send")
        }
        _ = try c.expect(0x81, "the peer's datagram") { String(decoding: $0.body.dropFirst(8), as: UTF8.self) == text }
        return "SA pushed by SMS, endpoint learned from a dummy ESP packet, datagram delivered"
    }

    static func secretOverSMS(_ c: ScenarioContext) throws -> String {
        let w = c.world
        let smsBefore = w.snapshot.smsUp
        let secret = "PIN 4321, account 12-3456"
        c.app.secret(channel: 1, Array(secret.utf8))
        let reply = try c.expect(0x82, "the gateway's answer over SMS")
        guard w.snapshot.smsUp > smsBefore else { throw ScenarioFailure("no SMS went up") }
        guard w.services.secretsSeen.contains(Array(secret.utf8)) else { throw ScenarioFailure("the gateway never got it") }
        // Not a packet count: a late ESP packet of an earlier scenario may still arrive. SECRET never reaches the data
        // plane (KD only, SMS-only type), so the check is that its bytes appear nowhere on the Internet side.
        guard !w.capture.contains(Array(secret.utf8)) else {
            throw ScenarioFailure("secret data touched the Internet side")
        }
        // Traffic matching a rule marked secret is refused by the data plane.
        c.app.datagram(to: 9999, from: 5001, Array(secret.utf8))
        _ = try c.expect(0x84, "'discarded' for the secret-marked flow") { $0.body.first == 3 }
        return "secret went up and came back by SMS (\(reply.body.count - 2) B answer); none on the Internet side"
    }

    static func saCache(_ c: ScenarioContext) throws -> String {
        let w = c.world
        // The relationship to reuse: made here when no earlier scenario contacted the party since the login.
        _ = try c.echo("hello", port: EmulatedPeer.echoPort, sport: 5003)
        let reuses = w.gw.counters.peerReuses
        let spis = w.capture.summary.spis
        let reply = try c.echo("account 42", port: EmulatedPeer.balancePort, sport: 5002)
        guard w.gw.counters.peerReuses > reuses else { throw ScenarioFailure("the gateway negotiated afresh") }
        guard w.capture.summary.spis > spis else { throw ScenarioFailure("no fresh SPI was used") }
        return "relationship with 127.0.0.1 reused, fresh SA pair; reply: \(reply)"
    }

    static func secureFetch(_ c: ScenarioContext) throws -> String {
        let server = try HTTPSTestServer(body: "{\"balance\": \"42.00 EUR\"}", certificate: c.world.fetchCertificate)
        defer { server.stop() }
        c.world.services.caFile = server.certificate  // the in-process gateway's; the daemon's is fetch_ca_file
        let url = "https://127.0.0.1:\(server.port)/balance"
        c.app.fetch(url)
        let m = try c.expect(0x83, "the fetch response", timeout: 60)
        guard m.body.count >= 5 else { throw ScenarioFailure("short fetch response") }
        let status = UInt16(m.body[2]) << 8 | UInt16(m.body[3])
        let body = String(decoding: m.body[5...], as: UTF8.self)
        guard status == 200, body.contains("42.00 EUR") else { throw ScenarioFailure("got HTTP \(status): \(body)") }
        guard !c.world.capture.contains(Array("42.00 EUR\"".utf8)) else { throw ScenarioFailure("fetched body seen on the Internet side") }
        return "HTTP \(status) over SMS: \(body)"
    }

    static func rekey(_ c: ScenarioContext) throws -> String {
        let w = c.world
        let soft = max(3, Int(c.duration / 3)), hard = soft * 2
        // The peer sets the lifetimes of the pairs it makes (the gateway's own apply only when it sets none).
        w.peer.lifetimes = (UInt32(soft), UInt32(hard))
        defer { w.peer.lifetimes = nil }
        // A fresh short-lived pair for the echo flow; it becomes the newest and takes over.
        let sel = TrafficSelector(local: w.handsetAddress, remote: w.peer.address, localPort: 0, remotePort: EmulatedPeer.echoPort)
        let delivered = w.gw.counters.saDelivered
        try w.gw.push(device: w.deviceID, selector: sel)
        try c.within(30, "the short-lived SA") { w.gw.counters.saDelivered > delivered }
        Thread.sleep(forTimeInterval: 1)
        let start = Date()
        var sent = 0, answered = 0, lost: [String] = []
        while Date().timeIntervalSince(start) < c.duration {
            sent += 1
            let at = Date().timeIntervalSince(start)
            _ = c.firmwareEvents()
            if (try? c.echo("tick \(sent)", sport: 5003, timeout: 5)) != nil {
                answered += 1
            } else {
                lost.append(String(format: "tick %d at %.1f s, firmware events %@", sent, at, c.firmwareEvents().description))
            }
            Thread.sleep(forTimeInterval: 1 / c.rate)
        }
        let rekeys = w.gw.counters.saDelivered - delivered - 1
        guard rekeys >= 1 else { throw ScenarioFailure("no rekey happened in \(Int(c.duration)) s (soft \(soft) s)") }
        guard answered == sent else {
            throw ScenarioFailure("\(sent - answered) of \(sent) echoes lost across the rekey: \(lost.joined(separator: "; "))")
        }
        return "\(sent) echoes, \(rekeys) rekey(s) at soft expiry (\(soft)/\(hard) s), none lost"
    }
}

extension Scenario {
    /// Kills the firmware process right after a step of the login rotation, so the gateway's answer is lost:
    /// first after the gateway handled the boot's first message (`login`, login-ack in flight), then after it
    /// promoted the new key (`key-confirm` handled, confirm-ack in flight), then once more after the first message.
    /// The cut lands wherever the firmware is by then (under load it may already have handled the answer, and the
    /// next boot resumes with `key-confirm`), so each wait is on the gateway's state, not on a message count.
    /// After a normal boot both sides must still agree: a fresh key request must succeed and traffic must flow.
    static func powerCut(_ c: ScenarioContext) throws -> String {
        let w = c.world
        let startEpoch = try w.gw.deviceState(w.deviceID)?.epoch ?? 0
        let stateNow = { (try? w.gw.deviceState(w.deviceID)) ?? nil }
        var resumed = 0
        for step in ["first message", "key promoted", "first message"] {
            let seen = w.gw.counters.received
            guard let before = stateNow() else { throw ScenarioFailure("the gateway does not know the device") }
            try w.powerCycleFirmware(path: c.firmware, qemu: c.qemu)
            try c.within(60, "\(step) after boot") {
                guard step == "key promoted" else { return w.gw.counters.received > seen }
                guard let now = stateNow() else { return false }
                if now.epoch != before.epoch { return true }
                // The cut before landed after the gateway promoted the key but before the handset kept the
                // confirm-ack: this boot resumes with key-confirm, answered under the promoted key (the answer and
                // its counter are one transaction), and no promotion is left to cut after.
                if now.downCounter > before.downCounter && !now.pendingKey && !before.pendingKey { resumed += 1; return true }
                return false
            }
            w.stopFirmware()
        }
        try w.startFirmware(path: c.firmware, qemu: c.qemu)
        // The app keeps asking until the restarted firmware is up and answers (its app socket comes up first).
        var reply: String?
        let end = Date().addingTimeInterval(90)
        while reply == nil && Date() < end { reply = try? c.echo("after power cuts", sport: 5010, timeout: 5) }
        guard let reply else { throw ScenarioFailure("no traffic after the restart") }
        let dev = try w.gw.deviceState(w.deviceID)
        guard let dev, !dev.pendingKey else { throw ScenarioFailure("gateway left with a pending key") }
        let note = resumed > 0 ? " (\(resumed) boot resumed with key-confirm, already promoted)" : ""
        return "3 cuts (kill -9)\(note), epoch \(startEpoch) -> \(dev.epoch), key request and traffic work: \(reply)"
    }
}

/// A throwaway https server on loopback with a self-signed certificate (openssl + Python's ssl module).
final class HTTPSTestServer {
    let dir: URL
    let port: Int
    let certificate: String
    let process: Process

    /// - Parameter certificate: one made earlier by `makeCertificate` (the daemon's `fetch_ca_file`); nil: a new one.
    init(body: String, certificate existing: (cert: String, key: String)? = nil) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("https-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try body.write(to: dir.appendingPathComponent("balance"), atomically: true, encoding: .utf8)
        let pair = try existing ?? Self.makeCertificate(in: dir)
        certificate = pair.cert
        let key = pair.key
        port = Int.random(in: 41000...49000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.currentDirectoryURL = dir
        process.arguments = ["-c", """
            import http.server, ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('\(certificate)', '\(key)')
            s = http.server.HTTPServer(('127.0.0.1', \(port)), http.server.SimpleHTTPRequestHandler)
            s.socket = ctx.wrap_socket(s.socket, server_side=True); s.serve_forever()
            """]
        process.standardError = Pipe()
        process.standardOutput = Pipe()
        try process.run()
        Thread.sleep(forTimeInterval: 0.7)
    }

    /// A self-signed certificate for 127.0.0.1 (openssl), as (certificate, key) paths in `dir`.
    static func makeCertificate(in dir: URL) throws -> (cert: String, key: String) {
        let certificate = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        gen.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate]
        gen.standardError = Pipe()
        gen.standardOutput = Pipe()
        try gen.run()
        gen.waitUntilExit()
        guard gen.terminationStatus == 0 else { throw ScenarioFailure("openssl could not make a test certificate") }
        return (certificate, key)
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }
}
