import Foundation
import Gateway
import Testing
@testable import HandsetCore

/// What every registry store must do, run on SQLite and on PostgreSQL alike.
@Suite struct RegistryContractTests {
    func fullRecord() -> DeviceRecord {
        // The top bit set: the 64-bit id's bit pattern must survive a signed column.
        var d = DeviceRecord(id: 0xF000_0000_0000_0A01, msisdn: "+15550099", key: Data(repeating: 0x11, count: 32), epoch: 3,
                             upCounter: 7, downCounter: 9, innerAddress: IPAddress(10, 0, 0, 9))
        d.pendingEpoch = 4
        d.pendingKey = Data(repeating: 0x22, count: 32)
        d.lastLogin = Date(timeIntervalSince1970: 1_700_000_000)
        d.ikeIdentity = "handset-a01@example.org"
        d.ikePSK = Data(repeating: 0x33, count: 24)
        d.ikeCertificate = Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8)
        d.ikePrivateKey = Data(repeating: 0x44, count: 119)
        return d
    }

    @Test(arguments: StoreKind.all) func aDeviceComesBackWithEveryFieldByEachKey(store: StoreKind) throws {
        let w = try World(store: store)
        let d = fullRecord()
        #expect(try w.registry.add(d) == d)
        #expect(try w.registry.device(id: d.deviceID) == d)
        #expect(try w.registry.device(msisdn: "+15550099") == d)
        #expect(try w.registry.device(innerAddress: IPAddress(10, 0, 0, 9)) == d)
        #expect(try w.registry.device(id: 0xDEAD) == nil && w.registry.device(msisdn: "+0") == nil)
        #expect(try w.registry.allDevices().map(\.deviceID).sorted() == [w.deviceID, d.deviceID].sorted())
        // Seen from a second connection too (another gateway instance).
        #expect(try w.openAnother().device(id: d.deviceID) == d)
    }

    @Test(arguments: StoreKind.all) func updateWritesOnlyWhatChangedAndAThrowingChangeLeavesTheRowAlone(store: StoreKind) throws {
        let w = try World(store: store)
        #expect(try w.registry.update(device: 0xDEAD) { _ in 1 } == nil)
        let before = try #require(try w.registry.device(id: w.deviceID))
        let written = try w.registry.rowsWritten()
        #expect(try w.registry.update(device: w.deviceID) { $0.epoch } == before.epoch)
        #expect(try w.registry.rowsWritten() == written)  // nothing changed, nothing written
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try w.registry.update(device: w.deviceID) { d -> Int in
                d.downCounter += 100
                throw Refused()
            }
        }
        #expect(try w.registry.device(id: w.deviceID) == before)
        #expect(try w.registry.update(device: w.deviceID) { d -> Int64 in d.downCounter += 1; return d.downCounter } == before.downCounter + 1)
        try w.registry.skipDownlinks(device: w.deviceID, 5)
        #expect(try w.registry.device(id: w.deviceID)?.downCounter == before.downCounter + 6)
        var saved = try #require(try w.registry.device(id: w.deviceID))
        saved.upCounter = 77
        try w.registry.save(saved)
        #expect(try w.openAnother().device(id: w.deviceID) == saved)
    }

    @Test(arguments: StoreKind.all) func peerContactsAreCountedPerDeviceAndForgotten(store: StoreKind) throws {
        let w = try World(store: store)
        #expect(try w.registry.notePeerContact(device: w.deviceID, peer: "192.0.2.1") == false)
        #expect(try w.registry.notePeerContact(device: w.deviceID, peer: "192.0.2.1") == true)
        #expect(try w.openAnother().notePeerContact(device: w.deviceID, peer: "192.0.2.1") == true)
        #expect(try w.registry.notePeerContact(device: 99, peer: "192.0.2.1") == false)
        try w.registry.forgetPeers(device: w.deviceID)
        #expect(try w.registry.notePeerContact(device: w.deviceID, peer: "192.0.2.1") == false)
        #expect(try w.registry.notePeerContact(device: 99, peer: "192.0.2.1") == true)
    }

    @Test(arguments: StoreKind.all) func openingWithAnotherKEKFailsWithATypedError(store: StoreKind) throws {
        let w = try World(store: store)
        let other = try KeyEncryptionKey.loadOrCreate(path: w.dir.appendingPathComponent("other.kek").path)
        #expect(throws: RegistryError.wrongKeyEncryptionKey) { try RegistryStoreSpec.open(w.spec, kek: other) }
        #expect(try w.openAnother().device(id: w.deviceID) != nil)  // the right one still opens it
    }

    /// The device id is in each wrap's associated data: a key blob copied onto another row does not open there.
    @Test(arguments: StoreKind.all) func aWrappedKeyCopiedToAnotherRowDoesNotOpen(store: StoreKind) throws {
        let w = try World(store: store)
        try w.registry.add(DeviceRecord(id: 2, msisdn: "+2", key: Data(repeating: 0x22, count: 32)))
        let copy = "UPDATE device SET key = (SELECT key FROM device WHERE id = \(Int64(bitPattern: w.deviceID))) WHERE id = 2"
        try w.rawSQL(sqlite: copy, postgres: copy)
        #expect(throws: RegistryError.keyUnwrapFailed(device: 2)) { try w.registry.device(id: 2) }
        #expect(try w.registry.device(id: w.deviceID) != nil)
    }
}
