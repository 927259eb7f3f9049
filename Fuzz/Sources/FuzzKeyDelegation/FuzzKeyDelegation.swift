// The key-delegation downlink path on a provisioned handset (in-memory store, device key 0,7,14,...).
// Byte 0 bit 0 picks the mode:
//   0: the rest is one raw message: KDHeader.parse both ways, KDBody.decode for every type, client.receive.
//   1: records of type (1 byte), counter step (1 byte), body length (1 byte), body, each sealed under the
//      device's epoch-0 downlink key and delivered in order, so the fuzzer reaches body decode and the actions.
@testable import HandsetCore

struct MemoryStore: KeyStateStore {
    var state: KeyState
    mutating func load() throws(StoreError) -> KeyState { state }
    mutating func save(_ s: KeyState) throws(StoreError) { state = s }
}

let deviceID: UInt64 = 0x0123_4567_89AB_CDEF
let types: [KDMessageType] = [.login, .loginAck, .keyConfirm, .confirmAck, .keyRequest, .saTransfer, .saAck, .saDelete,
                              .secretData, .fetchRequest, .fetchResponse, .error]

func deviceKey() -> [UInt8] { (0..<32).map { UInt8($0 * 7 & 0xFF) } }

/// One plane for the process (see Fuzz/README.md on debug-build leaks); its SAs are cleared per input.
nonisolated(unsafe) var plane: DataPlane<8, 4> = {
    var p = DataPlane<8, 4>()
    try! p.spd.append(SPDRule(SelectorPattern(remote: IPAddress(192, 0, 2, 0), prefix: 24), .protect(template: 1)))
    return p
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeyDelegation(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let key = deviceKey()
    let state = KeyState(deviceID: deviceID, key: key.withUnsafeBytes { KeyBytes($0) })
    var c = try! KeyDelegationClient(store: MemoryStore(state: state))
    c.localAddress = IPAddress(10, 0, 0, 2)
    plane.sas.reset()
    c.boot(now: 0)
    let rest = UnsafeRawBufferPointer(rebasing: all[1...])

    if all[0] & 1 == 0 {
        _ = KDHeader.parse(rest, direction: .up)
        _ = KDHeader.parse(rest, direction: .down)
        let body = UnsafeRawBufferPointer(rebasing: rest[min(rest.count, KD.downlinkHeader)...])
        for t in types { _ = KDBody.decode(t, body) }
        _ = c.receive(rest, now: 1, plane: &plane)
        while c.outbox.pop() != nil {}
        return 0
    }

    var keys = DeliveryKeys()
    precondition(key.withUnsafeBytes { keys.derive(deviceKey: $0, deviceID: deviceID, epoch: 0) })
    var wire = [UInt8](repeating: 0, count: KD.maxMessage + 64)
    var counter: UInt64 = 0
    var now: UInt64 = 1
    var pos = 0
    while pos + 3 <= rest.count {
        let type = types[Int(rest[pos]) % types.count]
        counter += UInt64(rest[pos + 1])
        let n = min(Int(rest[pos + 2]), rest.count - pos - 3)
        let body = UnsafeRawBufferPointer(rebasing: rest[pos + 3..<pos + 3 + n])
        pos += 3 + n
        now += 1
        for t in types { _ = KDBody.decode(t, body) }
        let h = KDHeader(type: type, epoch: 0, counter: counter)
        let before = c.state
        guard let m = wire.withUnsafeMutableBytes({ keys.seal(h, direction: .down, body: body, into: $0) }) else { continue }
        let r = wire.withUnsafeBytes { c.receive(UnsafeRawBufferPointer(rebasing: $0[0..<m]), now: now, plane: &plane) }
        // A rejection changes nothing but a counter; an authentic one still advances the downlink counter.
        if case .rejected = r {
            var after = c.state
            after.downCounter = before.downCounter
            precondition(after == before)
        }
        c.tick(now: now, plane: &plane)
        while c.outbox.pop() != nil {}
    }
    return 0
}
