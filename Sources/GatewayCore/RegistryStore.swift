import Foundation
import HandsetCore

/// Where the gateway keeps its devices: SQLite (`DeviceRegistry`, the embedded default) or PostgreSQL
/// (`PostgresRegistry`, for fleets and several gateway instances). docs/registry.md.
///
/// Every method is synchronous and may block on the store; call it from an ordinary thread, never from a NIO event
/// loop. Every change is one transaction, and `update` holds the device's row for its whole read-change-write, so
/// two gateways sharing a store never accept one uplink counter nor spend one downlink counter twice.
public protocol RegistryStore: AnyObject, Sendable {
    /// Adds a device. Without an inner address it gets the lowest free one in `pool`; two devices never share one.
    @discardableResult
    func add(_ d: DeviceRecord, pool: AddressPool) throws -> DeviceRecord
    func device(id: UInt64) throws -> DeviceRecord?
    func device(msisdn: String) throws -> DeviceRecord?
    func device(innerAddress: IPAddress) throws -> DeviceRecord?
    /// Reads the device under a lock held to commit, lets `change` edit it, writes it back if it changed. Nil:
    /// unknown device. `change` must not do I/O: it runs inside the transaction.
    func update<T>(device id: UInt64, _ change: (inout DeviceRecord) throws -> T) throws -> T?
    /// Overwrites the device's row. A device the store does not hold is `RegistryError.unknownDevice` (nothing written).
    func save(_ d: DeviceRecord) throws
    func allDevices() throws -> [DeviceRecord]
    /// Moves the device's sent counter on by `n` in one statement (downlinks lost on the way).
    func skipDownlinks(device: UInt64, _ n: Int64) throws
    /// Rows this store instance has written since it was opened: tests show that refused messages write nothing.
    func rowsWritten() throws -> Int
    /// Records a contact with `peer`; returns true when it was already known (the negotiation is reused).
    func notePeerContact(device: UInt64, peer: String) throws -> Bool
    func forgetPeers(device: UInt64) throws
    /// Lets go of connections and threads (a daemon's drain); later calls fail. SQLite's file closes when the
    /// store is released, so there it does nothing.
    func disconnect()
}

extension RegistryStore {
    public func disconnect() {}

    @discardableResult
    public func add(_ d: DeviceRecord) throws -> DeviceRecord { try add(d, pool: .standard) }
}

/// Refuses an inner address no handset may hold (the same rule on every store).
package func checkInnerAddress(_ a: IPAddress) throws(RegistryError) {
    guard a.isUsableInnerAddress else {
        throw RegistryError.badInnerAddress(a.isV6 ? "IPv6" : a.dottedQuad)
    }
}
