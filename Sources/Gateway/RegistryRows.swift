import Foundation
import GatewayCore
import HandsetCore

extension DeviceRegistry: RegistryStore {}

// MARK: Rows as stored, keys wrapped

extension KeyEncryptionKey {
    /// The row as stored: keys, the IKE PSK and the IKE private key wrapped afresh (a new random nonce each time), device id in the AAD.
    func row(_ d: DeviceRecord) throws(RegistryError) -> DeviceRow {
        DeviceRow(id: d.id, msisdn: d.msisdn, epoch: d.epoch, key: try wrap(d.key, deviceID: d.deviceID, slot: .current),
                  pendingEpoch: d.pendingEpoch,
                  pendingKey: try d.pendingKey.map { k throws(RegistryError) in try wrap(k, deviceID: d.deviceID, slot: .pending) },
                  upCounter: d.upCounter, downCounter: d.downCounter, lastLogin: d.lastLogin, innerAddress: d.innerAddress?.dottedQuad,
                  ikeIdentity: d.ikeIdentity,
                  ikePSK: try d.ikePSK.map { k throws(RegistryError) in try wrap(k, deviceID: d.deviceID, slot: .ikePSK) },
                  ikeCertificate: d.ikeCertificate,
                  ikePrivateKey: try d.ikePrivateKey.map { k throws(RegistryError) in
                      try wrap(k, deviceID: d.deviceID, slot: .ikePrivateKey)
                  })
    }

    func record(_ r: DeviceRow) throws(RegistryError) -> DeviceRecord {
        let id = UInt64(bitPattern: r.id)
        var d = DeviceRecord(id: id, msisdn: r.msisdn, key: try unwrap(r.key, deviceID: id, slot: .current), epoch: r.epoch,
                             upCounter: r.upCounter, downCounter: r.downCounter)
        d.pendingEpoch = r.pendingEpoch
        d.pendingKey = try r.pendingKey.map { k throws(RegistryError) in try unwrap(k, deviceID: id, slot: .pending) }
        d.lastLogin = r.lastLogin
        d.ikeIdentity = r.ikeIdentity
        d.ikePSK = try r.ikePSK.map { k throws(RegistryError) in try unwrap(k, deviceID: id, slot: .ikePSK) }
        d.ikeCertificate = r.ikeCertificate
        d.ikePrivateKey = try r.ikePrivateKey.map { k throws(RegistryError) in try unwrap(k, deviceID: id, slot: .ikePrivateKey) }
        if let s = r.innerAddress {
            guard let a = IPAddress(dottedQuad: s) else { throw RegistryError.corruptRow(device: d.deviceID) }
            d.innerAddress = a
        }
        return d
    }

    /// The check value stored beside the rows: a wrong KEK is told at open, not at the first device.
    func checkValue() throws(RegistryError) -> Data { try wrap(Data(count: 32), deviceID: 0, slot: .check) }
    func verify(checkValue blob: Data?) throws(RegistryError) {
        do { _ = try unwrap(blob ?? Data(), deviceID: 0, slot: .check) } catch { throw RegistryError.wrongKeyEncryptionKey }
    }
}
