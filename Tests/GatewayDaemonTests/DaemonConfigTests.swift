import Foundation
import Gateway
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
        negotiator = emulated
        """

    static let minimal = """
        # the gateway
        registry = reg.sqlite
        kek = reg.kek
        smpp_system_id = handset-gw
        smpp_password_file = smpp.pw
        negotiator = emulated
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

    /// No default negotiator: a file without one is refused rather than run against the emulated peer, and an
    /// unknown one is named with its line.
    @Test func theNegotiatorIsRequiredAndNamed() throws {
        let d = try Self.dir()
        let without = Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "")
        let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(without, file: "gw.conf", baseDirectory: d) }
        #expect(e.line == 0 && e.key == "negotiator" && e.reason.contains("required"))
        let bad = Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "negotiator = racoon")
        let b = try #require(throws: ConfigError.self) { try DaemonConfig.parse(bad, file: "gw.conf", baseDirectory: d) }
        #expect(b.line == 12 && b.key == "negotiator" && b.reason.contains("strongswan, socket"))
    }

    /// The password lives in a file of its own, readable by the owner only, as the KEK does.
    @Test func aPasswordFileOthersMayReadIsRefused() throws {
        let d = try Self.dir()
        chmod(d + "/smpp.pw", 0o644)
        let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(Self.valid, file: "gw.conf", baseDirectory: d) }
        #expect(e.line == 7 && e.key == "smpp_password_file" && e.reason.contains("chmod 600"))
    }

    /// `registry` names a store: a bare path and `sqlite:` are SQLite (relative to the config's directory), a
    /// PostgreSQL URL takes its password from a 0600 file only. Mistakes are named with the line.
    @Test func theRegistryKeyNamesAStore() throws {
        let d = try Self.dir()
        _ = FileManager.default.createFile(atPath: d + "/db.pw", contents: Data("pg-secret\n".utf8), attributes: [.posixPermissions: 0o600])
        func parse(_ registry: String) throws(ConfigError) -> DaemonConfig {
            try DaemonConfig.parse(Self.minimal.replacingOccurrences(of: "registry = reg.sqlite", with: "registry = " + registry)
                                   + "\ngateway_number = +15550199\n", file: "gw.conf", baseDirectory: d)
        }
        #expect(try parse("reg.sqlite").registryStore == .sqlite(path: d + "/reg.sqlite"))
        #expect(try parse("sqlite:sub/reg.sqlite").registryStore == .sqlite(path: d + "/sub/reg.sqlite"))
        #expect(try parse("sqlite:/var/reg.sqlite").registryStore == .sqlite(path: "/var/reg.sqlite"))
        let pg = try parse("postgres://gw@127.0.0.1:5433/fleet?password_file=db.pw&connections=8")
        guard case .postgres(let p) = pg.registryStore else { Issue.record("not postgres"); return }
        #expect(p.user == "gw" && p.host == "127.0.0.1" && p.port == 5433 && p.database == "fleet" && p.connections == 8)
        #expect(p.password == .file(d + "/db.pw"))
        #expect(!pg.registry.contains("pg-secret"))
        for (bad, why) in [("mysql://gw@h/db", "unknown store"), ("postgres://gw:pw@h/db", "no password in the URL"),
                           ("postgres://gw@h/db?password_env=PGPW", "password_file only"),
                           ("postgres://gw@h/db?password_file=nope.pw", "nope.pw"),
                           ("postgres://gw@h/db?sslmode=require", "unknown option sslmode"), ("sqlite:", "missing")] {
            let e = try #require(throws: ConfigError.self) { try parse(bad) }
            #expect(e.line == 2 && e.key == "registry" && e.reason.contains(why), "\(bad): \(e)")
        }
        chmod(d + "/db.pw", 0o640)
        let e = try #require(throws: ConfigError.self) { try parse("postgres://gw@h/db?password_file=db.pw") }
        #expect(e.line == 2 && e.reason.contains("chmod 600"))
    }

    @Test func strongswanNeedsItsSocketsAndServer() throws {
        let d = try Self.dir()
        let e = try #require(throws: ConfigError.self) {
            try DaemonConfig.parse(Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "negotiator = strongswan") + "\nstrongswan_vici = /run/charon.vici\n", file: "gw.conf",
                                   baseDirectory: d)
        }
        #expect(e.line == 12 && e.key == "strongswan_key_socket")
        let stray = try #require(throws: ConfigError.self) {
            try DaemonConfig.parse(Self.valid + "\nstrongswan_vici = /run/charon.vici\n", file: "gw.conf", baseDirectory: d)
        }
        #expect(stray.line == 13 && stray.reason.contains("only used with negotiator = strongswan"))
    }

    /// X.509 and virtual IPs for the proxy (docs/ike-proxy.md): the server's CA file is read at load.
    @Test func strongswanServerCAAndVirtualIP() throws {
        let d = try Self.dir()
        _ = FileManager.default.createFile(atPath: d + "/server-ca.pem",
                                           contents: Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8))
        let ss = """
            strongswan_vici = /run/charon.vici
            strongswan_key_socket = /run/charon.handset-proxy
            strongswan_server = 192.0.2.1
            strongswan_server_id = vpn.example.org
            strongswan_ike_remote = 127.0.0.1:4500
            """
        let c = try DaemonConfig.parse(Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "negotiator = strongswan") + "\n" + ss + "\nstrongswan_server_ca = server-ca.pem\nstrongswan_virtual_ip = yes\n",
                                       file: "gw.conf", baseDirectory: d)
        guard case .strongswan(let s) = c.negotiator else { Issue.record("not strongswan"); return }
        #expect(s.serverCA == d + "/server-ca.pem" && s.virtualIP)
        for bad in ["strongswan_server_ca = missing.pem", "strongswan_server_ca = smpp.pw", "strongswan_virtual_ip = maybe"] {
            let e = try #require(throws: ConfigError.self) {
                try DaemonConfig.parse(Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "negotiator = strongswan") + "\n" + ss + "\n" + bad + "\n", file: "gw.conf", baseDirectory: d)
            }
            #expect(e.line == 18 && e.key == String(bad.split(separator: " ")[0]))
        }
    }

    /// Behind a packet gateway (docs/ike-proxy.md): the proxy's NAT-T port and the server's ESP port; the proxy's
    /// rekey_time.
    @Test func strongswanPorts() throws {
        let d = try Self.dir()
        let ss = """
            strongswan_vici = /run/charon.vici
            strongswan_key_socket = /run/charon.handset-proxy
            strongswan_server = 192.0.2.1
            strongswan_server_id = vpn.example.org
            strongswan_ike_remote = 127.0.0.1:40500
            """
        let base = Self.valid.replacingOccurrences(of: "negotiator = emulated", with: "negotiator = strongswan") + "\n" + ss + "\n"
        let plain = try DaemonConfig.parse(base, file: "gw.conf", baseDirectory: d)
        guard case .strongswan(let p) = plain.negotiator else { Issue.record("not strongswan"); return }
        #expect(p.ikeLocalPort == 0 && p.serverESPPort == 4500 && p.rekeyTime == 2700)
        let c = try DaemonConfig.parse(base + "strongswan_ike_local_port = 4600\nstrongswan_server_esp_port = 4501\n"
                                       + "strongswan_rekey_time = 600\n", file: "gw.conf", baseDirectory: d)
        guard case .strongswan(let s) = c.negotiator else { Issue.record("not strongswan"); return }
        #expect(s.ikeLocalPort == 4600 && s.serverESPPort == 4501 && s.rekeyTime == 600)
        let lines = base.split(separator: "\n", omittingEmptySubsequences: false).count
        for (bad, allowed) in [("strongswan_ike_local_port = 0", "1-65535"), ("strongswan_server_esp_port = 70000", "1-65535"),
                               ("strongswan_ike_local_port = x", "1-65535"), ("strongswan_rekey_time = 59", "60-86400")] {
            let e = try #require(throws: ConfigError.self) { try DaemonConfig.parse(base + bad + "\n", file: "gw.conf", baseDirectory: d) }
            #expect(e.line == lines && e.key == String(bad.split(separator: " ")[0]) && e.reason.contains(allowed), "\(bad): \(e)")
        }
    }
}
