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
            Writes STATE_DIR/device.key (device id, a fresh 256-bit device key, counters at zero; replaced
            atomically) and adds the same key to the gateway's SQLite registry. Copy STATE_DIR to the board's
            state_dir. The key is never printed.
            """)

    @Option(help: "Gateway registry (SQLite file; created if missing).") var registry: String
    @Option(name: .customLong("state-dir"), help: "Handset state directory to write device.key into.") var stateDir: String
    @Option(help: "The handset's phone number (MSISDN), as the SMS centre shows it.") var msisdn: String
    @Option(name: .customLong("device-id"), help: "64-bit device id in hex (default: random).") var deviceID: String?

    func run() throws {
        let id = try deviceID.map { s -> UInt64 in
            guard let v = UInt64(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16) else {
                throw ValidationError("--device-id must be hex")
            }
            return v
        } ?? UInt64.random(in: 1...UInt64.max)
        let result = try Provisioning.create(registry: registry, stateDir: stateDir, msisdn: msisdn, deviceID: id)
        print("device-id: \(String(result, radix: 16))")
        print("key-file: \(stateDir)/device.key")
    }
}

enum Provisioning {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func create(registry path: String, stateDir: String, msisdn: String, deviceID: UInt64) throws -> UInt64 {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        var key = KeyMaterial.random(32)
        defer { for i in key.indices { key[i] = 0 } }
        let reg = try DeviceRegistry(path: path)
        guard try reg.device(id: deviceID) == nil, try reg.device(msisdn: msisdn) == nil else {
            throw Failure(description: "a device with that id or number is already registered")
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
        try reg.add(DeviceRecord(id: deviceID, msisdn: msisdn, key: Data(key)))
        return deviceID
    }
}
