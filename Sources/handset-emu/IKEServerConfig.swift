import Foundation
import Gateway
import HandsetCore

/// `run --server strongswan --server-config DIR`: a user's own strongSwan server settings. DIR holds what the lab
/// server loads (`swanctl.conf` and its credential folders: x509, x509ca, private, ...; `swanctl --load-all`) and
/// `proxy.conf`, what the gateway's proxy needs to talk to that server as the handset:
///
///     server_id = vpn.example.net          # the server's IKE identity (required)
///     server_ca = x509ca/server-ca.pem     # the CA the server's certificate must chain to; absent: PSK
///     handset_id = handset@example.net     # the handset's IKE identity (default HEXID@handset.invalid)
///     handset_ca_cert = handset-ca.pem     # issue the handset a certificate with this CA ...
///     handset_ca_key = handset-ca.key      # ... and its key (PEM)
///     handset_psk_file = handset.psk       # or: the handset's PSK (the server's secrets must hold it)
///     virtual_ip = yes                     # ask for an address from the server's pool (needed when its conn has
///                                          # `pools`); the handset adopts the lease it gets
///     handset_address = 10.202.9.1         # the handset's provisioned inner address (default 10.201.0.2)
///     rekey_time = 2700                    # the proxy's CHILD_SA rekey_time in seconds (default 2700): below
///                                          # your server's children's rekey_time minus their rand_time, so the
///                                          # proxy rekeys first and nothing is lost (docs/ike-proxy.md)
///
/// Paths are relative to DIR. Unknown keys are refused, so a typo is not silently ignored.
struct IKEServerConfig {
    let dir: URL
    var serverID = ""
    var serverCAs: [[UInt8]] = []
    /// The file `serverCAs` came from (the daemon's `strongswan_server_ca`).
    var serverCAFile: String?
    var handsetID: String?
    var handsetCA: (certificate: String, key: String)?
    var handsetPSK: [UInt8]?
    var virtualIP = false
    var handsetAddress: IPAddress?
    /// The proxy's CHILD_SA rekey_time (StrongSwanNegotiator.Configuration.rekeyTime).
    var rekeyTime: UInt32 = StrongSwanNegotiator.Configuration.defaultRekeyTime

    static let keys = ["server_id", "server_ca", "handset_id", "handset_ca_cert", "handset_ca_key", "handset_psk_file",
                       "virtual_ip", "handset_address", "rekey_time"]

    init(directory: String) throws {
        dir = URL(fileURLWithPath: directory).standardizedFileURL
        let swanctl = dir.appendingPathComponent("swanctl.conf").path
        guard FileManager.default.fileExists(atPath: swanctl) else { throw WorldError("--server-config: \(swanctl) missing") }
        let file = dir.appendingPathComponent("proxy.conf").path
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw WorldError("--server-config: \(file) missing") }
        var seen: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[1].isEmpty else { throw WorldError("\(file):\(n + 1): expected key = value") }
            guard Self.keys.contains(kv[0]) else {
                throw WorldError("\(file):\(n + 1): unknown key '\(kv[0])' (allowed: \(Self.keys.joined(separator: ", ")))")
            }
            guard seen[kv[0]] == nil else { throw WorldError("\(file):\(n + 1): '\(kv[0])' given twice") }
            seen[kv[0]] = kv[1]
        }
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : dir.appendingPathComponent(p).path }
        func read(_ key: String) throws -> [UInt8]? {
            guard let p = seen[key] else { return nil }
            guard let d = FileManager.default.contents(atPath: path(p)) else { throw WorldError("\(file): \(key): cannot read \(path(p))") }
            return Array(d)
        }
        guard let id = seen["server_id"] else { throw WorldError("\(file): server_id is required") }
        serverID = id
        if let ca = try read("server_ca") {
            serverCAs = [ca]
            serverCAFile = seen["server_ca"].map(path)
        }
        handsetID = seen["handset_id"]
        switch seen["virtual_ip"] {
        case nil, "no": virtualIP = false
        case "yes": virtualIP = true
        case let v?: throw WorldError("\(file): virtual_ip must be yes or no, not '\(v)'")
        }
        if let r = seen["rekey_time"] {
            guard let t = UInt32(r), (60...86400).contains(t) else { throw WorldError("\(file): rekey_time must be 60-86400 seconds") }
            rekeyTime = t
        }
        if let a = seen["handset_address"] {
            guard let ip = IPAddress(dottedQuad: a) else { throw WorldError("\(file): handset_address must be A.B.C.D") }
            handsetAddress = ip
        }
        switch (seen["handset_ca_cert"], seen["handset_ca_key"], seen["handset_psk_file"]) {
        case (let c?, let k?, nil): handsetCA = (path(c), path(k))
        case (nil, nil, _?):
            var psk = try read("handset_psk_file") ?? []
            while let last = psk.last, last == 0x0A || last == 0x0D { psk.removeLast() }
            guard !psk.isEmpty else { throw WorldError("\(file): handset_psk_file is empty") }
            handsetPSK = psk
        default:
            throw WorldError("\(file): give handset_ca_cert and handset_ca_key, or handset_psk_file")
        }
    }
}
