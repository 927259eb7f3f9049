import Foundation
import Gateway
import HandsetCore

/// The invariants `torture` checks, each measured from outside the firmware: on the wire, at the app, in the
/// gateway's registry and in the handset's state file.
enum TortureInvariant: String, CaseIterable, Sendable {
    case nonceUnique = "no (key, nonce) pair reused on the wire"
    case noReplay = "no replayed packet accepted"
    case ackedKept = "no acknowledged key-delegation message lost"
    case canLogIn = "the device can always log in again"
    case noClearText = "no protected flow sent in clear"
    case replayUnanswered = "a replay flood is answered at most once"
    case smsStorageBounded = "module SMS storage stays bounded"
}

/// Checks made and violations per invariant. Thread-safe: taps call it from the simulator's and peer's threads.
final class TortureLedger: @unchecked Sendable {
    struct Violation { var invariant: TortureInvariant; var iteration: Int; var detail: String }
    private let lock = NSLock()
    private var checks: [TortureInvariant: Int] = [:]
    private(set) var violations: [Violation] = []
    var iteration = 0
    /// Printed as each violation happens (the campaign's reproduction line follows at the end).
    var report: (@Sendable (Violation) -> Void)?

    func check(_ inv: TortureInvariant, _ ok: Bool, _ detail: @autoclosure () -> String) {
        let v: Violation? = lock.withLock {
            checks[inv, default: 0] += 1
            guard !ok else { return nil }
            let v = Violation(invariant: inv, iteration: iteration, detail: detail())
            violations.append(v)
            return v
        }
        if let v { report?(v) }
    }

    func count(_ inv: TortureInvariant) -> (checks: Int, violations: Int) {
        lock.withLock { (checks[inv] ?? 0, violations.filter { $0.invariant == inv }.count) }
    }

    var anyViolation: Bool { lock.withLock { !violations.isEmpty } }
}

/// Every nonce used on the wire, per key: ESP (key and salt from the SA the peer installed, IV from the packet)
/// and key-delegation messages (direction, epoch, counter; a repeat is fine only as a byte-identical copy,
/// which is a retransmission or a network duplicate, never a second encryption).
final class NonceLedger: @unchecked Sendable {
    private let lock = NSLock()
    private let ledger: TortureLedger
    private var keyBySPI: [UInt32: [UInt8]] = [:]
    private var espNonces = Set<[UInt8]>()
    private var kdMessages: [String: [UInt8]] = [:]

    init(ledger: TortureLedger) { self.ledger = ledger }

    /// An SA as the gateway handed it out. The key stays in this process's memory only.
    func sa(spi: UInt32, key: [UInt8], salt: UInt32) {
        lock.withLock { keyBySPI[spi] = key + withUnsafeBytes(of: salt.bigEndian) { Array($0) } }
    }

    /// One ESP packet as seen between the module and the opposite party.
    func esp(_ packet: [UInt8]) {
        guard packet.count >= 16 else { return }
        let spi = packet[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let iv = Array(packet[8..<16])
        let fresh: Bool = lock.withLock {
            let key = keyBySPI[spi] ?? Array(packet[0..<4])
            return espNonces.insert(key + iv).inserted
        }
        ledger.check(.nonceUnique, fresh, "ESP SPI \(String(format: "%08x", spi)) sent IV \(hexString(iv)) twice under one key")
    }

    /// One key-delegation message as carried by the SMS centre (whole, after reassembly).
    func keyDelegation(up: Bool, _ wire: [UInt8]) {
        let header = wire.withUnsafeBytes { KDHeader.parse($0, direction: up ? .up : .down) }
        guard let h = header else { return }
        let name = "\(up ? "up" : "down") epoch \(h.epoch) counter \(h.counter)"
        let same: Bool = lock.withLock {
            if let earlier = kdMessages[name] { return earlier == wire }
            kdMessages[name] = wire
            return true
        }
        ledger.check(.nonceUnique, same, "key-delegation \(name) sealed twice with different contents")
    }
}

/// What the app received from the firmware: each payload the opposite party sent is unique, so a second delivery
/// means a packet was accepted twice (a replay, ours or the network's).
final class DeliveryLedger: @unchecked Sendable {
    private let lock = NSLock()
    private let ledger: TortureLedger
    private var seen: [[UInt8]: Int] = [:]

    init(ledger: TortureLedger) { self.ledger = ledger }

    func delivered(_ payload: [UInt8]) {
        let n: Int = lock.withLock {
            seen[payload, default: 0] += 1
            return seen[payload]!
        }
        ledger.check(.noReplay, n == 1, "the app received '\(String(decoding: payload.prefix(40), as: UTF8.self))' \(n) times")
    }

    func has(_ payload: [UInt8]) -> Bool { lock.withLock { seen[payload] != nil } }

    /// One replayed packet has had its chance to be accepted (the check itself is `delivered`).
    func replayWindowPassed() { ledger.check(.noReplay, true, "") }
}

/// Module SMS storage, read from the simulator at a quiet moment: the firmware deletes every part it lets go
/// (message handled, duplicate, timed out, evicted), so storage holds at most what it still reassembles.
struct SMSStorageCheck: Sendable {
    let ledger: TortureLedger

    func check(stored: Int, bound: Int, after what: String) {
        ledger.check(.smsStorageBounded, stored <= bound, "\(stored) SMS left in module storage after \(what) (bound \(bound))")
    }
}

/// Every app payload carries `marker`; it must never appear in anything the module carries to the network
/// (socket bridge datagrams, SMS user data).
struct ClearTextScanner: Sendable {
    static let marker = Array("torture:".utf8)
    let ledger: TortureLedger

    func scan(_ bytes: [UInt8], what: String) {
        ledger.check(.noClearText, !bytes.contains(Self.marker), "app payload in clear in \(what): \(hexString(bytes.prefix(48)))")
    }
}

/// Gateway registry against the handset's state file (docs/key-delegation.md §3, §5). Whatever one side acted on,
/// the other must still be able to follow: both see the same current key (or the handset holds as pending the key
/// the gateway already promoted), neither accepted a counter the other has not made durable.
enum KeyAgreement {
    static func problems(handset h: KeyState, gateway g: DeviceRecord) -> [String] {
        var out: [String] = []
        if h.upCounter < UInt64(g.upCounter) {
            out.append("the gateway accepted uplink counter \(g.upCounter), the handset only persisted \(h.upCounter)")
        }
        if h.downCounter > UInt64(g.downCounter) {
            out.append("the handset accepted downlink counter \(h.downCounter), the gateway only persisted \(g.downCounter)")
        }
        let gKey = [UInt8](g.key)
        let current = Int(h.epoch) == g.epoch && bytes(h.currentKey) == gKey
        let promoted = h.hasPending && Int(h.pendingEpoch) == g.epoch && bytes(h.pendingKey) == gKey
        if !current && !promoted {
            out.append("keys disagree: handset epoch \(h.epoch) (pending \(h.pendingEpoch)), gateway epoch \(g.epoch)")
        }
        if current, h.hasPending, let pk = g.pendingKey, Int(h.pendingEpoch) == g.pendingEpoch, bytes(h.pendingKey) != [UInt8](pk) {
            out.append("the handset's pending key for epoch \(h.pendingEpoch) is not the gateway's: its confirm can never verify")
        }
        return out
    }

    /// A login has completed: no rotation pending on either side, one epoch.
    static func loggedIn(handset h: KeyState, gateway g: DeviceRecord) -> Bool {
        !h.hasPending && Int(h.epoch) == g.epoch && g.pendingKey == nil
    }

    static func bytes(_ k: KeyBytes) -> [UInt8] { k.withBytes { Array($0) } }

    /// The handset's state file, or nil when it cannot be read whole.
    static func readState(_ path: String) -> KeyState? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return d.withUnsafeBytes { KeyState.decode($0) }
    }
}
