import ArgumentParser
import Foundation
import Gateway
import HandsetCore

/// Creates a device: its key file for the handset and its row in the gateway's registry.
struct ProvisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Create a device: a key file for the handset and a registry row for the gateway.",
        discussion: """
            Writes STATE_DIR/device.key (device id, a fresh 256-bit device key, counters at zero; replaced \
            atomically) and adds the same key to the gateway's SQLite registry, wrapped under the key-encryption \
            key in --kek (32 random bytes, 0600, created if absent; default REGISTRY.kek. Keep it apart from the \
            registry's copies and backups, and give the gateway the same file). Copy STATE_DIR to the board's \
            state_dir. The key is never printed.

            Each device gets its own inner address: --inner-address, or else the lowest free one in \
            --address-pool. The gateway grants SAs for that address only. Put it in the handset's config as \
            local_address (--config does that for you).

            For a real IPsec server (issue 15) the gateway's proxy runs IKE as the device: --ike-id sets its IKE \
            identity (default HEXID@handset.invalid) and --ike-psk-file its pre-shared key, read from the file, or \
            when the file does not exist a fresh random one written there (0600) for the server's secrets. The \
            PSK is stored wrapped under the key-encryption key and never printed.

            Or X.509: --ike-ca-cert and --ike-ca-key issue the device a fresh Ed25519 key and a certificate for \
            its IKE identity (subjectAltName: e-mail, DNS name or IPv4 address), signed by that CA, with openssl. \
            The private key is stored wrapped under the key-encryption key and is never written anywhere else; \
            the proxy hands it to charon over VICI (load-key). --ike-cert also writes the issued certificate \
            there. Without the CA options, --ike-cert and --ike-key import an existing certificate and key (PEM).

            Examples:
              handset-emu provision --registry reg.sqlite --state-dir state \\
                --msisdn +15550100001
              handset-emu provision --registry reg.sqlite --kek reg.kek --state-dir s2 \\
                --msisdn +15550100002 --config handset.conf
              handset-emu provision --registry reg.sqlite --state-dir s3 --msisdn +15550100003 \\
                --ike-id handset3@example.org --ike-psk-file s3/ike.psk
              handset-emu provision --registry reg.sqlite --state-dir s4 --msisdn +15550100004 \\
                --ike-id handset4@example.org --ike-ca-cert ca.pem --ike-ca-key ca.key   # illustrative: needs your CA
            """)

    @Option(help: """
        Gateway registry: a SQLite file (created if missing), or a store as the gateway names it \
        (sqlite:PATH, postgres://USER@HOST:PORT/DB?password_file=F; docs/registry.md).
        """)
    var registry: String
    @Option(help: "The registry's key-encryption key file (created if missing; default: REGISTRY.kek).") var kek: String?
    @Option(name: .customLong("state-dir"), help: "Handset state directory to write device.key into.") var stateDir: String
    @Option(help: "The handset's phone number (MSISDN), as the SMS centre shows it.") var msisdn: String
    @Option(name: .customLong("device-id"), help: "64-bit device id in hex (default: random).") var deviceID: String?
    @Option(name: .customLong("inner-address"), help: "The device's inner IPv4 address (default: next free in the pool).")
    var innerAddress: String?
    @Option(name: .customLong("address-pool"), help: "Pool for inner addresses, A.B.C.D/N.") var addressPool = "10.77.0.0/16"
    @Option(help: "Handset config file whose local_address line is set to the device's inner address.") var config: String?
    @Option(name: .customLong("ike-id"), help: "The device's IKE identity at the proxy (default: HEXID@handset.invalid).")
    var ikeID: String?
    @Option(name: .customLong("ike-psk-file"), help: "The device's IKE pre-shared key (created, random, if missing).")
    var ikePSKFile: String?
    @Option(name: .customLong("ike-ca-cert"), help: "CA certificate (PEM) that issues the device's IKE certificate.")
    var ikeCACert: String?
    @Option(name: .customLong("ike-ca-key"), help: "That CA's private key (PEM).") var ikeCAKey: String?
    @Option(name: .customLong("ike-cert"), help: "The device's IKE certificate: written when issued, else imported (PEM).")
    var ikeCert: String?
    @Option(name: .customLong("ike-key"), help: "The device's IKE private key to import with --ike-cert (PEM).")
    var ikeKey: String?

    func validate() throws {
        if (ikeCACert == nil) != (ikeCAKey == nil) { throw ValidationError("--ike-ca-cert and --ike-ca-key go together") }
        if ikeCACert != nil && ikeKey != nil { throw ValidationError("--ike-key imports a key: leave out --ike-ca-cert/--ike-ca-key") }
        if ikeCACert == nil && (ikeCert == nil) != (ikeKey == nil) { throw ValidationError("--ike-cert and --ike-key go together") }
        if ikePSKFile != nil && (ikeCACert != nil || ikeCert != nil) {
            throw ValidationError("a device authenticates with a PSK or a certificate: choose --ike-psk-file or the certificate options")
        }
    }

    func run() throws {
        let id = try deviceID.map { s -> UInt64 in
            guard let v = UInt64(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16) else {
                throw ValidationError("--device-id must be hex")
            }
            return v
        } ?? UInt64.random(in: 1...UInt64.max)
        guard let pool = AddressPool(cidr: addressPool) else { throw ValidationError("--address-pool must be A.B.C.D/N (N 8...30)") }
        let address = try innerAddress.map { s -> IPAddress in
            guard let a = IPAddress(dottedQuad: s) else { throw ValidationError("--inner-address must be A.B.C.D") }
            return a
        }
        var ike: (identity: String, psk: Data)?
        var cert: (certificate: Data, privateKey: Data)?
        let wantsCert = ikeCACert != nil || ikeCert != nil
        if ikeID != nil || ikePSKFile != nil || wantsCert {
            guard ikePSKFile != nil || wantsCert else { throw ValidationError("--ike-id needs --ike-psk-file or a certificate") }
            let identity = ikeID ?? String(format: "%016llx@handset.invalid", id)
            guard !identity.isEmpty, identity.utf8.count <= 255 else { throw ValidationError("--ike-id must be 1-255 octets") }
            if let ikePSKFile {
                ike = (identity, try Provisioning.preSharedKey(file: ikePSKFile))
            } else {
                ike = (identity, Data())
                cert = try Provisioning.certificate(identity: identity, caCert: ikeCACert, caKey: ikeCAKey, cert: ikeCert, key: ikeKey)
            }
        }
        defer {
            if var k = ike?.psk { k.resetBytes(in: 0..<k.count) }
            if let n = cert?.privateKey.count { cert?.privateKey.resetBytes(in: 0..<n) }
        }
        if Provisioning.isSpec(registry) && !registry.hasPrefix("sqlite:") && kek == nil {
            throw ValidationError("--kek is needed with a PostgreSQL registry")
        }
        let dev = try Provisioning.create(registry: registry, kek: kek ?? registry + ".kek", stateDir: stateDir, msisdn: msisdn, deviceID: id,
                                          innerAddress: address, pool: pool, ike: ike, certificate: cert)
        let assigned = dev.innerAddress?.dottedQuad ?? "?"
        if let config { try Provisioning.setLocalAddress(assigned, inConfig: config) }
        print("device-id: \(String(dev.deviceID, radix: 16))")
        print("key-file: \(stateDir)/device.key")
        print("local_address = \(assigned)")
        if let ike { print("ike-id: \(ike.identity)") }
        if cert != nil { print("ike-auth: certificate\(ikeCACert != nil ? " issued by \(ikeCACert!)" : "")") }
    }
}

enum Provisioning {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// A store spec rather than a bare SQLite path.
    static func isSpec(_ registry: String) -> Bool {
        ["sqlite:", "postgres://", "postgresql://"].contains { registry.hasPrefix($0) }
    }

    static func create(registry path: String, kek kekPath: String, stateDir: String, msisdn: String, deviceID: UInt64,
                       innerAddress: IPAddress? = nil, pool: AddressPool = .standard,
                       ike: (identity: String, psk: Data)? = nil,
                       certificate: (certificate: Data, privateKey: Data)? = nil) throws -> DeviceRecord {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        var key = KeyMaterial.random(32)
        defer { for i in key.indices { key[i] = 0 } }
        let kek = try KeyEncryptionKey.loadOrCreate(path: kekPath)
        let reg: any RegistryStore = isSpec(path) ? try RegistryStoreSpec.open(path, kek: kek) : try DeviceRegistry(path: path, kek: kek)
        defer { reg.disconnect() }
        guard try reg.device(id: deviceID) == nil, try reg.device(msisdn: msisdn) == nil else {
            throw Failure(description: "a device with that id or number is already registered")
        }
        if let a = innerAddress, try reg.device(innerAddress: a) != nil {
            throw Failure(description: "inner address \(a.dottedQuad) is already assigned to another device")
        }
        let deviceKey = key.withUnsafeBytes { KeyBytes($0) }
        guard var store = stateDir.withCString({ FileKeyStore(directory: $0) }) else {
            throw Failure(description: "state dir path too long")
        }
        do {
            try store.save(KeyState(deviceID: deviceID, key: deviceKey))
        } catch {
            throw Failure(description: "cannot write \(stateDir)/device.key: \(error)")
        }
        var record = DeviceRecord(id: deviceID, msisdn: msisdn, key: Data(key), innerAddress: innerAddress)
        record.ikeIdentity = ike?.identity
        record.ikePSK = certificate == nil ? ike?.psk : nil
        record.ikeCertificate = certificate?.certificate
        record.ikePrivateKey = certificate?.privateKey
        return try reg.add(record, pool: pool)
    }

    /// The device's certificate and key: issued by the CA (the certificate then also written to `cert`, if given),
    /// or imported from `cert` and `key`.
    static func certificate(identity: String, caCert: String?, caKey: String?, cert: String?, key: String?) throws
        -> (certificate: Data, privateKey: Data) {
        if let caCert, let caKey {
            var issued = try IKECertificate.issue(identity: identity, caCertificate: caCert, caKey: caKey)
            defer { for i in issued.privateKey.indices { issued.privateKey[i] = 0 } }
            if let cert { try Data(issued.certificate).write(to: URL(fileURLWithPath: cert), options: .atomic) }
            return (Data(issued.certificate), Data(issued.privateKey))
        }
        guard let cert, let key, let c = FileManager.default.contents(atPath: cert), let k = FileManager.default.contents(atPath: key) else {
            throw Failure(description: "cannot read --ike-cert/--ike-key")
        }
        guard String(decoding: c, as: UTF8.self).contains("BEGIN CERTIFICATE"),
              String(decoding: k, as: UTF8.self).contains("PRIVATE KEY") else {
            throw Failure(description: "--ike-cert must be a PEM certificate and --ike-key a PEM private key")
        }
        return (c, k)
    }

    /// Reads a PSK file (one line, trailing newline dropped), or creates one: 32 random octets as 64 hex digits,
    /// 0600, written to a temp file, synced, then linked into place (never replacing one that appeared).
    static func preSharedKey(file path: String) throws -> Data {
        if let data = FileManager.default.contents(atPath: path) {
            var text = data
            while let last = text.last, last == 0x0A || last == 0x0D { text.removeLast() }
            guard !text.isEmpty else { throw Failure(description: "\(path) is empty") }
            return text
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        var raw = KeyMaterial.random(32)
        defer { for i in raw.indices { raw[i] = 0 } }
        let hex = Data(raw.map { String(format: "%02x", $0) }.joined().utf8)
        let tmp = "\(path).\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let line = hex + Data([0x0A])
        let ok = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        close(fd)
        defer { unlink(tmp) }
        guard ok, link(tmp, path) == 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        return hex
    }

    /// Replaces (or appends) the `local_address` line of a handset config file, atomically.
    static func setLocalAddress(_ address: String, inConfig path: String) throws {
        let old = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var lines = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let line = "local_address = \(address)"
        let isLocal = { (l: String) in l.split(separator: "=").first?.trimmingCharacters(in: .whitespaces) == "local_address" }
        if let i = lines.firstIndex(where: isLocal) {
            lines[i] = line
            lines.removeAll { isLocal($0) && $0 != line }
        } else {
            lines.append(line)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
