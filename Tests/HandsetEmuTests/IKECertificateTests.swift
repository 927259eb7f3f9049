import Foundation
import Gateway
import Testing
@testable import handset_emu

/// `handset-emu provision --ike-ca-cert/--ike-ca-key` (issue 15): a device key and certificate issued with openssl,
/// the key only in memory and in the registry (wrapped), never in a file.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs /usr/bin/openssl"))
struct IKECertificateTests {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("ikecert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func openssl(_ args: [String], input: [UInt8] = []) throws -> String {
        String(decoding: try IKECertificate.run("/usr/bin/openssl", args, input: input), as: UTF8.self)
    }

    /// A CA (Ed25519) in `dir`: ca.pem, ca.key.
    func makeCA(_ dir: URL) throws -> (String, String) {
        let cert = dir.appendingPathComponent("ca.pem").path, key = dir.appendingPathComponent("ca.key").path
        _ = try openssl(["genpkey", "-algorithm", "ed25519", "-out", key])
        _ = try openssl(["req", "-x509", "-new", "-key", key, "-subj", "/CN=Test CA", "-days", "2", "-out", cert,
                         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
        return (cert, key)
    }

    @Test(arguments: [
        ("0011223344556677@handset.invalid", "email:0011223344556677@handset.invalid"),
        ("vpn.example.org", "DNS:vpn.example.org"),
        ("192.0.2.7", "IP:192.0.2.7"),
    ])
    func theIdentityGoesIntoTheSubjectAltName(_ id: String, _ san: String) {
        #expect(IKECertificate.subjectAltName(id) == san)
    }

    @Test(arguments: ["", "no-dots", "a@b", "@example.org", "x/CN=evil.example", "a b.example", "ünï.example", ".example."])
    func identitiesThatCannotBeCertifiedAreRefused(_ id: String) {
        #expect(IKECertificate.subjectAltName(id) == nil)
    }

    @Test func provisioningIssuesACertificateAndKeepsTheKeyOutOfFiles() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (caCert, caKey) = try makeCA(dir)
        let certOut = dir.appendingPathComponent("dev.pem").path
        let cert = try Provisioning.certificate(identity: "dev1@example.org", caCert: caCert, caKey: caKey, cert: certOut, key: nil)
        let reg = dir.appendingPathComponent("r.sqlite").path, kek = dir.appendingPathComponent("r.kek").path
        let d = try Provisioning.create(registry: reg, kek: kek, stateDir: dir.appendingPathComponent("s").path, msisdn: "+1",
                                        deviceID: 0xB1, ike: ("dev1@example.org", Data()), certificate: cert)
        let stored = try #require(try DeviceRegistry(path: reg, kek: try KeyEncryptionKey.load(path: kek)).device(id: d.deviceID))
        #expect(stored.ikeIdentity == "dev1@example.org" && stored.ikePSK == nil)
        let key = try #require(stored.ikePrivateKey)
        #expect(String(decoding: key, as: UTF8.self).contains("BEGIN PRIVATE KEY"))
        #expect(stored.ikeCertificate == cert.certificate)
        // The certificate: issued by the CA, for the identity, and it holds the public half of the stored key.
        #expect(try openssl(["verify", "-CAfile", caCert, certOut]).contains("OK"))
        let text = try openssl(["x509", "-noout", "-ext", "subjectAltName,basicConstraints", "-in", certOut])
        #expect(text.contains("email:dev1@example.org") && text.contains("CA:FALSE"))
        let fromKey = try openssl(["pkey", "-pubout", "-in", "/dev/stdin"], input: Array(key))
        let fromCert = try openssl(["x509", "-noout", "-pubkey", "-in", certOut])
        #expect(fromKey == fromCert && fromKey.contains("BEGIN PUBLIC KEY"))
        // No file anywhere under the directory holds the key; the registry holds it wrapped only.
        let files = FileManager.default.enumerator(atPath: dir.path)!.compactMap { $0 as? String }
        for f in files {
            let data = FileManager.default.contents(atPath: dir.appendingPathComponent(f).path) ?? Data()
            #expect(data.range(of: key) == nil, "\(f) holds the device's private key")
        }
    }

    @Test func anIdentityThatCannotBeCertifiedIssuesNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (caCert, caKey) = try makeCA(dir)
        let certOut = dir.appendingPathComponent("dev.pem").path
        #expect(throws: IKECertificate.Failure.self) {
            _ = try Provisioning.certificate(identity: "no identity", caCert: caCert, caKey: caKey, cert: certOut, key: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: certOut))
    }

    @Test func aCAKeyThatIsNotTheCAsIssuesNothing() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (caCert, _) = try makeCA(dir)
        let wrong = dir.appendingPathComponent("wrong.key").path
        _ = try openssl(["genpkey", "-algorithm", "ed25519", "-out", wrong])
        let certOut = dir.appendingPathComponent("dev.pem").path
        // openssl refuses a CA key that does not match the CA certificate; nothing is written.
        #expect(throws: IKECertificate.Failure.self) {
            _ = try Provisioning.certificate(identity: "dev@example.org", caCert: caCert, caKey: wrong, cert: certOut, key: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: certOut))
    }
}

/// The same through the command line: `handset-emu provision` with the CA options, and the combinations it refuses.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs /usr/bin/openssl"))
struct ProvisionCertificateCommandTests {
    @Test func provisionIssuesTheCertificateIntoTheRegistry() throws {
        let t = IKECertificateTests()
        let dir = try t.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (caCert, caKey) = try t.makeCA(dir)
        let reg = dir.appendingPathComponent("r.sqlite").path, out = dir.appendingPathComponent("dev.pem").path
        let cmd = try ProvisionCommand.parse(["--registry", reg, "--state-dir", dir.appendingPathComponent("s").path,
                                              "--msisdn", "+15550100004", "--device-id", "c4", "--ike-id", "handset4@example.org",
                                              "--ike-ca-cert", caCert, "--ike-ca-key", caKey, "--ike-cert", out])
        try cmd.run()
        let d = try #require(try DeviceRegistry(path: reg, kek: try KeyEncryptionKey.load(path: reg + ".kek")).device(id: 0xC4))
        #expect(d.ikeIdentity == "handset4@example.org" && d.ikePSK == nil)
        #expect(d.ikeCertificate == FileManager.default.contents(atPath: out))
        #expect(try t.openssl(["verify", "-CAfile", caCert, out]).contains("OK"))
        #expect(d.ikePrivateKey.map { String(decoding: $0, as: UTF8.self).contains("BEGIN PRIVATE KEY") } == true)
    }

    @Test(arguments: [
        ["--ike-ca-cert", "ca.pem"],                                          // without its key
        ["--ike-ca-cert", "ca.pem", "--ike-ca-key", "ca.key", "--ike-key", "k.pem"],  // issue and import at once
        ["--ike-cert", "c.pem"],                                              // import without the key
        ["--ike-psk-file", "p", "--ike-cert", "c.pem", "--ike-key", "k.pem"], // PSK and certificate
    ])
    func contradictoryOptionsAreRefusedBeforeAnythingIsWritten(_ extra: [String]) {
        #expect(throws: (any Error).self) {
            _ = try ProvisionCommand.parse(["--registry", "/nonexistent/r.sqlite", "--state-dir", "/nonexistent/s",
                                            "--msisdn", "+1"] + extra)
        }
        #expect(!FileManager.default.fileExists(atPath: "/nonexistent/r.sqlite"))
    }
}
