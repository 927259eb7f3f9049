import Foundation
import Gateway
import HandsetCore
import ProxyIKE
import Testing

/// X.509 per device (issue 15) against the lab's REAL stock charon: the proxy holds the device's certificate and
/// private key (loaded over VICI, never on disk) and checks the server's certificate against the configured CA.
/// Certificates are Ed25519, made with Debian's openssl in the lab's directory.
@Suite(.serialized, .enabled(if: IKELab.unavailable == nil, "\(IKELab.unavailable ?? "")"))
struct StrongSwanCertificateTests {
    static let device: UInt64 = 0xC1
    static let identity = "00000000000000c1@handset.invalid"
    static let inner = IPAddress(10, 201, 0, 5)
    static let service = IPAddress(10, 200, 0, 1)

    /// CA certificates and keys, and issued certificates, under `dir`.
    struct PKI {
        let dir: URL
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func text(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(name))) }

        func ca(_ name: String, _ cn: String) throws {
            try IKELab.output("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", path("\(name).key")])
            try IKELab.output("/usr/bin/openssl", ["req", "-x509", "-new", "-key", path("\(name).key"), "-subj", "/CN=\(cn)",
                                                   "-days", "30", "-out", path("\(name).pem"),
                                                   "-addext", "basicConstraints=critical,CA:TRUE",
                                                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        }

        func issue(_ name: String, by ca: String, san: String) throws {
            try IKELab.output("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", path("\(name).key")])
            try IKELab.output("/usr/bin/openssl", ["req", "-x509", "-new", "-key", path("\(name).key"), "-CA", path("\(ca).pem"),
                                                   "-CAkey", path("\(ca).key"), "-subj", "/CN=\(name)", "-days", "30",
                                                   "-out", path("\(name).pem"), "-addext", "subjectAltName=\(san)",
                                                   "-addext", "basicConstraints=critical,CA:FALSE"])
        }
    }

    /// A lab whose server authenticates with a certificate from `serverCA` and accepts devices certified by
    /// `deviceCA` (its own conn for the device's identity, more specific than the lab's PSK conn `hs`), and a
    /// negotiator that trusts `trustedCA` for the server.
    struct Setup {
        let lab: IKELab
        let pki: PKI
        let negotiator: StrongSwanNegotiator
        var server: IPAddress { IPAddress(dottedQuad: lab["SRV_ADDR"])! }

        init(trustedCA: String) throws {
            lab = try IKELab()
            do {
                pki = PKI(dir: lab.dir)
                try pki.ca("server-ca", "Server CA")
                try pki.ca("device-ca", "Device CA")
                try pki.ca("other-ca", "Other CA")
                try pki.issue("server", by: "server-ca", san: "DNS:\(lab["SRV_ID"])")
                try pki.issue("device", by: "device-ca", san: "email:\(StrongSwanCertificateTests.identity)")
                try Self.loadServer(lab: lab, pki: pki)
                let registry = try DeviceRegistry(path: lab.dir.appendingPathComponent("reg.sqlite").path,
                                                  kek: try KeyEncryptionKey.loadOrCreate(path: lab.dir.appendingPathComponent("reg.kek").path))
                var d = DeviceRecord(id: StrongSwanCertificateTests.device, msisdn: "+15550000193", key: Data(KeyMaterial.random(32)),
                                     innerAddress: StrongSwanCertificateTests.inner)
                d.ikeIdentity = StrongSwanCertificateTests.identity
                d.ikeCertificate = Data(try pki.text("device.pem"))
                d.ikePrivateKey = Data(try pki.text("device.key"))
                try registry.add(d)
                // The proxy gets the key from the registry only: the file goes before the negotiator starts.
                unlink(pki.path("device.key"))
                var c = StrongSwanNegotiator.Configuration(
                    viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"], serverAddress: IPAddress(dottedQuad: lab["SRV_ADDR"])!,
                    ikeRemoteAddress: lab["SRV_ADDR"], serverID: lab["SRV_ID"])
                c.timeout = 3
                c.serverCAs = [try pki.text("\(trustedCA).pem")]
                negotiator = StrongSwanNegotiator(configuration: c, registry: registry)
                try negotiator.start(devices: [StrongSwanCertificateTests.device])
            } catch {
                lab.down()
                throw error
            }
        }

        static func loadServer(lab: IKELab, pki: PKI) throws {
            var key = VICIMessage()
            key.add("type", "any")
            key.add("data", bytes: try pki.text("server.key"))
            try lab.serverCallChecked("load-key", key)
            var local = VICIMessage()
            local.add("auth", "pubkey")
            local.add("id", lab["SRV_ID"])
            local.add("certs", listOfBytes: [try pki.text("server.pem")])
            var remote = VICIMessage()
            remote.add("auth", "pubkey")
            remote.add("id", StrongSwanCertificateTests.identity)
            remote.add("cacerts", listOfBytes: [try pki.text("device-ca.pem")])
            var child = VICIMessage()
            child.add("local_ts", list: ["10.200.0.1/32"])
            child.add("remote_ts", list: [lab["HANDSET_NET"]])
            child.add("esp_proposals", list: ["aes256gcm16"])
            // The lab's PSK conn `hs` has these addresses too: equal on addresses, this conn wins on the identity.
            try lab.serverLoadConn("hscert", local: local, remote: remote, child: child)
        }


        func establish() -> (Result<KDSATransfer, NegotiationFailure>, Double) {
            let sel = TrafficSelector(local: StrongSwanCertificateTests.inner, remote: StrongSwanCertificateTests.service,
                                      localPort: 0, remotePort: 7)
            let t0 = Date()
            let r = negotiator.establish(device: StrongSwanCertificateTests.device, handset: StrongSwanCertificateTests.inner,
                                         selector: sel, template: 1, reused: false)
            return (r, Date().timeIntervalSince(t0))
        }

        func close() {
            negotiator.stop()
            lab.down()
        }
    }

    @Test func aDeviceCertificateAndATrustedServerCertificateGiveTheServersSA() throws {
        let s = try Setup(trustedCA: "server-ca")
        defer { s.close() }
        let (r, seconds) = s.establish()
        print("establish with certificates (IKE_SA_INIT + IKE_AUTH + key record): \(String(format: "%.1f", seconds * 1000)) ms")
        guard case .success(let t) = r else {
            Issue.record("establish failed: \(r)\n\(s.lab.tail("PROXY_LOG", lines: 30))")
            return
        }
        // The server's own view: its certificate conn, the device's identity, the handset's SPIs.
        let sas = try s.lab.serverSAs()
        let sa = try #require(sas.first { $0.name == "hscert" }, "the server used \(sas.map(\.name)), not its certificate conn")
        #expect(sa.sa.string("remote-id") == Self.identity)
        let child = try #require(try s.lab.serverChildren().first { $0.string("spi-in") == StrongSwanNegotiatorTests.hex(t.outboundSPI) })
        #expect(child.string("spi-out") == StrongSwanNegotiatorTests.hex(t.inboundSPI))
        #expect(t.keyLength == 32 && t.algorithm == .aesGCM)
        // The keys are the server's: it opens what HandsetCore sealed.
        try StrongSwanNegotiatorTests.sendESP(t, to: s.server)
        #expect(try StrongSwanNegotiatorTests.eventually(2) {
            try s.lab.serverChildren().first { $0.string("spi-in") == StrongSwanNegotiatorTests.hex(t.outboundSPI) }?
                .string("packets-in") == "1"
        })
        // Both ends authenticated by certificate; the private key never touched the proxy's disk (its file was
        // removed before the negotiator started: charon had it over VICI only).
        let log = (try? String(contentsOfFile: s.lab["SRV_LOG"], encoding: .utf8)) ?? ""
        #expect(log.contains("authentication of '\(Self.identity)' with ED25519 successful"))
        #expect(!FileManager.default.fileExists(atPath: s.pki.path("device.key")))
        #expect(s.negotiator.counters.established == 1)
    }

    @Test func aServerCertificateFromAnUntrustedCAIsAuthenticationFailed() throws {
        let s = try Setup(trustedCA: "other-ca")
        defer { s.close() }
        let (r, seconds) = s.establish()
        #expect(r == .failure(.authenticationFailed), "\(s.lab.tail("PROXY_LOG", lines: 30))")
        #expect(seconds < 4)
        // Nothing was installed at the server for the handset.
        #expect(try s.lab.serverChildren().isEmpty)
        #expect(s.negotiator.counters.failed == 1 && s.negotiator.counters.established == 0)
    }

    @Test func credentialsFromARegistryRow() throws {
        #expect(StrongSwanNegotiator.Credentials(record: DeviceRecord(id: 1, msisdn: "+1", key: Data(count: 32))) == nil)
        var cert = DeviceRecord(id: 2, msisdn: "+2", key: Data(count: 32))
        cert.ikeIdentity = "a@b.example"
        cert.ikeCertificate = Data("CERT".utf8)
        #expect(StrongSwanNegotiator.Credentials(record: cert) == nil, "a certificate without its key is no credential")
        cert.ikePrivateKey = Data("KEY".utf8)
        cert.ikePSK = Data("psk".utf8)
        let c = try #require(StrongSwanNegotiator.Credentials(record: cert))
        #expect(c.certificate == Array("CERT".utf8) && c.privateKey == Array("KEY".utf8) && c.psk.isEmpty)
    }
}
