import Foundation
import GatewayDaemon
import Testing

@Suite struct DaemonConfigTests {
    /// A directory with a 0600 password file, for configs that need one.
    static func dir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("gwconf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: d + "/smpp.pw", contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o600])
        return d
    }

    static let valid = """
        # the gateway
        registry = reg.sqlite
        kek = /etc/handset/reg.kek
        smpp_host = 127.0.0.1
        smpp_port = 2775
        smpp_system_id = handset-gw
        smpp_password_file = smpp.pw
        gateway_number = +15550199   # the handsets' gateway_number
        udp_listen = 127.0.0.1:4501
        log_format = json
        http_listen = 127.0.0.1:0
        """

    static let minimal = """
        # the gateway
        registry = reg.sqlite
        kek = reg.kek
        smpp_system_id = handset-gw
        smpp_password_file = smpp.pw
        """

    @Test func aValidFileParsesWithPathsFromItsDirectory() throws {
        let d = try Self.dir()
        let c = try DaemonConfig.parse(Self.valid, file: "gw.conf", baseDirectory: d)
        #expect(c.registry == d + "/reg.sqlite")
        #expect(c.kek == "/etc/handset/reg.kek")
        #expect(c.smppPassword == "secret")
        #expect(c.gatewayNumber == "+15550199")
        #expect(c.udpListen == DaemonConfig.Endpoint(host: "127.0.0.1", port: 4501))
        #expect(c.logFormat == .json && c.negotiator == .emulated)
        #expect(c.httpListen.port == 0)
    }

    /// Each bad line is reported with the file, its line number, its key and what the key allows.
    @Test(arguments: [
        ("smpp_port = 70000", "smpp_port", "1-65535"),
        ("log_format = xml", "log_format", "text or json"),
        ("negotiator = racoon", "negotiator", "emulated or strongswan"),
        ("gateway_number = 12ab", "gateway_number", "3-20 digits"),
        ("http_listen = 9464", "http_listen", "ADDRESS:PORT"),
        ("log_level = loud", "log_level", "critical"),
        ("reassembly_timeout = 0", "reassembly_timeout", "1-3600"),
        ("smpp_prot = 1", "smpp_prot", "known keys: registry"),
        ("registry reg.sqlite", "registry reg.sqlite", "key = value"),
        ("registry = other.sqlite", "registry", "given twice (first on line 2)"),
        ("drain_timeout = -1", "drain_timeout", "0-300 seconds"),
        ("device_workers = 0", "device_workers", "1-4096"),
        ("sa_hard_seconds = 2000", "sa_hard_seconds", "must be below sa_hard_seconds (2000)"),
    ])
    func aBadLineIsNamed(line: String, key: String, allowed: String) throws {
        let d = try Self.dir()
        let text = Self.minimal + "\n" + line + "\n"
        let badLine = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(text, file: "gw.conf", baseDirectory: d) }
        #expect(e.line == badLine)
        #expect(e.key == key)
        #expect(e.reason.contains(allowed))
        #expect(e.description.hasPrefix("gw.conf:\(badLine): \(key): "))
    }

    @Test func aMissingRequiredKeyIsNamed() throws {
        let d = try Self.dir()
        let text = Self.valid.split(separator: "\n").filter { !$0.hasPrefix("smpp_system_id") }.joined(separator: "\n")
        let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(text, file: "gw.conf", baseDirectory: d) }
        #expect(e.line == 0 && e.key == "smpp_system_id" && e.reason.contains("required"))
    }

    /// The password lives in a file of its own, readable by the owner only, as the KEK does.
    @Test func aPasswordFileOthersMayReadIsRefused() throws {
        let d = try Self.dir()
        chmod(d + "/smpp.pw", 0o644)
        let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(Self.valid, file: "gw.conf", baseDirectory: d) }
        #expect(e.line == 7 && e.key == "smpp_password_file" && e.reason.contains("chmod 600"))
    }

    @Test func strongswanNeedsItsSocketsAndServer() throws {
        let d = try Self.dir()
        let e = try #require(throws: ConfigError.self) {
            try DaemonConfig.parse(Self.valid + "\nnegotiator = strongswan\nstrongswan_vici = /run/charon.vici\n", file: "gw.conf",
                                   baseDirectory: d)
        }
        #expect(e.line == 12 && e.key == "strongswan_key_socket")
        let stray = try #require(throws: ConfigError.self) {
            try DaemonConfig.parse(Self.valid + "\nstrongswan_vici = /run/charon.vici\n", file: "gw.conf", baseDirectory: d)
        }
        #expect(stray.line == 12 && stray.reason.contains("only used with negotiator = strongswan"))
    }

    /// X.509 and virtual IPs for the proxy (docs/ike-proxy.md): the server's CA file is read at load.
    @Test func strongswanServerCAAndVirtualIP() throws {
        let d = try Self.dir()
        _ = FileManager.default.createFile(atPath: d + "/server-ca.pem",
                                           contents: Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8))
        let ss = """
            negotiator = strongswan
            strongswan_vici = /run/charon.vici
            strongswan_key_socket = /run/charon.handset-proxy
            strongswan_server = 192.0.2.1
            strongswan_server_id = vpn.example.org
            strongswan_ike_remote = 127.0.0.1:4500
            """
        let c = try DaemonConfig.parse(Self.valid + "\n" + ss + "\nstrongswan_server_ca = server-ca.pem\nstrongswan_virtual_ip = yes\n",
                                       file: "gw.conf", baseDirectory: d)
        guard case .strongswan(let s) = c.negotiator else { Issue.record("not strongswan"); return }
        #expect(s.serverCA == d + "/server-ca.pem" && s.virtualIP)
        for bad in ["strongswan_server_ca = missing.pem", "strongswan_server_ca = smpp.pw", "strongswan_virtual_ip = maybe"] {
            let e = try #require(throws: ConfigError.self) {
                try DaemonConfig.parse(Self.valid + "\n" + ss + "\n" + bad + "\n", file: "gw.conf", baseDirectory: d)
            }
            #expect(e.line == 18 && e.key == String(bad.split(separator: " ")[0]))
        }
    }
}
