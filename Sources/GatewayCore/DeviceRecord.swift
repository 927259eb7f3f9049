import Foundation
import HandsetCore

/// One provisioned handset as the gateway knows it. Keys are held in clear in memory only; the registry
/// stores them wrapped under its key-encryption key.
public struct DeviceRecord: Equatable, Sendable {
    public var id: Int64  // the 64-bit device id, bit pattern preserved
    public var msisdn: String
    public var epoch: Int
    public var key: Data
    public var pendingEpoch: Int
    public var pendingKey: Data?
    public var upCounter: Int64  // last accepted from the handset
    public var downCounter: Int64  // last sent to the handset
    public var lastLogin: Date?
    /// The only handset address this device may ask SAs for; nil (a row from before addresses) may ask for none.
    public var innerAddress: IPAddress?
    /// The IKE identity the proxy uses for this device, and its pre-shared key (nil: none provisioned).
    public var ikeIdentity: String?
    public var ikePSK: Data?
    /// X.509 instead of (or beside) the PSK: the device's certificate (PEM, public) and its private key (PEM; held
    /// by the proxy, never by the handset; wrapped under the KEK at rest like the PSK).
    public var ikeCertificate: Data?
    public var ikePrivateKey: Data?

    public var deviceID: UInt64 { UInt64(bitPattern: id) }

    public init(id: UInt64, msisdn: String, key: Data, epoch: Int = 0, upCounter: Int64 = 0, downCounter: Int64 = 0,
                innerAddress: IPAddress? = nil) {
        self.id = Int64(bitPattern: id)
        self.msisdn = msisdn
        self.epoch = epoch
        self.key = key
        pendingEpoch = 0
        pendingKey = nil
        self.upCounter = upCounter
        self.downCounter = downCounter
        lastLogin = nil
        self.innerAddress = innerAddress
    }
}

public enum RegistryError: Error, Equatable, CustomStringConvertible {
    /// Another device already has this inner address.
    case addressInUse(String)
    /// No address given and none left in the pool.
    case poolExhausted
    /// Inner addresses are IPv4 unicast only.
    case badInnerAddress(String)
    /// A stored inner address that does not parse: the row was edited by hand.
    case corruptRow(device: UInt64)
    /// The key-encryption key given is not the one this registry was written with.
    case wrongKeyEncryptionKey
    /// A wrapped device key does not open: tampered with, or moved from another row.
    case keyUnwrapFailed(device: UInt64)
    case keyWrapFailed(device: UInt64)
    /// The KEK file is missing, unreadable, the wrong size, or readable by others.
    case kekFile(path: String, reason: String)
    case registryFile(path: String, reason: String)
    /// The database cannot be reached (down, restarting, connection lost mid-call): try again later. A change
    /// whose commit was cut off may or may not have landed; a counter it took is then skipped, never reused.
    case storeUnavailable(String)
    /// The database refused a statement (a constraint, a trigger, a full disk): nothing of the change was kept.
    case storeFailed(String)
    /// The database was migrated by a newer gateway: this one does not know its schema.
    case schemaTooNew(found: Int, known: Int)
    /// `save` of a device the registry does not hold (every store: nothing is written).
    case unknownDevice(UInt64)

    public var description: String {
        switch self {
        case .addressInUse(let a): "inner address \(a) is already assigned to another device"
        case .poolExhausted: "no free inner address left in the pool"
        case .badInnerAddress(let a): "\(a) is not a usable inner IPv4 address"
        case .corruptRow(let d): "registry row of device \(String(d, radix: 16)) is corrupt"
        case .wrongKeyEncryptionKey: "the key-encryption key is not the one this registry was written with"
        case .keyUnwrapFailed(let d): "the stored key of device \(String(d, radix: 16)) does not open under the key-encryption key"
        case .keyWrapFailed(let d): "cannot wrap the key of device \(String(d, radix: 16))"
        case .kekFile(let p, let r): "key-encryption key file \(p): \(r)"
        case .registryFile(let p, let r): "registry \(p): \(r)"
        case .storeUnavailable(let r): "registry database unavailable: \(r)"
        case .storeFailed(let r): "registry database refused the change: \(r)"
        case .schemaTooNew(let f, let k): "registry schema version \(f) is newer than this gateway's \(k)"
        case .unknownDevice(let d): "device \(String(d, radix: 16)) is not in the registry"
        }
    }
}
