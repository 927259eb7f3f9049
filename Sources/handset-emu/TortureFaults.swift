import Foundation
import ModemSim

/// The faults a campaign draws from. Each iteration injects one, sometimes with a line fault on top.
enum TortureFault: String, CaseIterable, Sendable {
    case rebootMidCMGS = "modem reboot mid +CMGS"
    case rebootBetweenParts = "modem reboot between downlink parts"
    case garbage = "garbage on the line"
    case dropFinal = "dropped final result"
    case smsLoss = "SMS lost"
    case smsDuplicate = "SMS duplicated"
    case smsReorderParts = "SMS parts reordered"
    case smsReorderMessages = "SMS messages reordered"
    case socketClose = "socket dropped by the network"
    case killRandom = "kill -9 at a random moment"
    case killLogin = "kill -9 during key rotation"
    case killSAInstall = "kill -9 during SA install"
    case replayFlood = "one captured uplink replayed 100,000 times"
    case downlinkBlackout = "100,000 downlinks lost (handset offline)"
    case replay = "replayed ESP packets injected"
    case partialSMS = "partial concatenated SMS (first part only)"

    /// Drawn as an iteration's main fault (replays happen every iteration).
    static let drawn: [TortureFault] = allCases.filter { $0 != .replay }

    /// The short name `--only` also takes.
    var name: String {
        switch self {
        case .rebootMidCMGS: "reboot-mid-cmgs"
        case .rebootBetweenParts: "reboot-between-parts"
        case .garbage: "garbage"
        case .dropFinal: "drop-final"
        case .smsLoss: "sms-loss"
        case .smsDuplicate: "sms-duplicate"
        case .smsReorderParts: "sms-reorder-parts"
        case .smsReorderMessages: "sms-reorder-messages"
        case .socketClose: "socket-close"
        case .killRandom: "kill-random"
        case .killLogin: "kill-login"
        case .killSAInstall: "kill-sa-install"
        case .replayFlood: "replay-flood"
        case .downlinkBlackout: "downlink-blackout"
        case .replay: "replay"
        case .partialSMS: "partial-sms"
        }
    }

    /// A fault by its short name or its description.
    init?(named s: String) {
        guard let f = Self.allCases.first(where: { $0.name == s || $0.rawValue == s }) else { return nil }
        self = f
    }
    /// Cheap faults that may ride along with the main one.
    static let lineFaults: [TortureFault] = [.garbage, .dropFinal]
}

/// Work an iteration drives through the firmware.
enum TortureWork: String, CaseIterable, Sendable {
    case echo = "echo over ESP"
    case keyRequest = "key request (new flow)"
    case push = "peer push"
    case secret = "secret over SMS (3 parts each way)"
}

/// Seeded generator for the campaign's choices (SplitMix64), so a seed reproduces the fault sequence.
struct TortureRandom {
    private var mix: SplitMix64
    init(seed: UInt64) { mix = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { mix.next() }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func seconds(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * Double(next() >> 11) / Double(1 << 53)
    }
}

/// Fires when the n-th downlink of the chosen key-delegation types passes through the world (for kills at a
/// protocol moment).
final class KDTrigger: @unchecked Sendable {
    private let cond = NSCondition()
    private var armed: Set<UInt8> = []
    private var left = 0
    private var hit = false

    func arm(_ types: Set<UInt8>, nth: Int = 1) { cond.withLock { armed = types; left = nth; hit = false } }

    func saw(up: Bool, type: UInt8) {
        cond.withLock {
            guard !up, armed.contains(type) else { return }
            left -= 1
            guard left <= 0 else { return }
            armed = []
            hit = true
            cond.broadcast()
        }
    }

    func wait(_ seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        return cond.withLock {
            while !hit { if !cond.wait(until: end) { break } }
            defer { armed = []; hit = false }
            return hit
        }
    }
}
