// The SIM's PIN lock (TS 27.007 §8.3 +CPIN, §9.2.1 errors) and the vendors' retry counters.
// A SIM with a PIN asks for it after every power-on; three wrong PINs lock it behind its PUK (ten wrong PUKs
// block it for good). Tries left live on the card, so they survive a module reboot; the unlock does not.
// Counter shapes: SIMCom AT+SPIC → +SPIC: <pin1>,<puk1>,<pin2>,<puk2>; Quectel AT+QPINC="SC" →
// +QPINC: "SC",<pin>,<puk> (AT+QPINC? lists "SC" and "P2"); u-blox AT+UPINCNT → +UPINCNT: <pin1>,<pin2>,<puk1>,
// <puk2>; TS 27.007 AT+CPINR="SIM PIN" → +CPINR: SIM PIN,<retries>,<default> (ofono drivers/atmodem/sim.c parses
// the same shapes).

import Foundation

/// Which retry counter command a module answers.
public enum PINCounterCommand: String, Sendable {
    case spic, qpinc, upincnt, cpinr
}

/// Where the SIM stands.
enum SIMLock: Equatable {
    case ready, pin, puk, blocked

    var cpinAnswer: String {
        switch self {
        case .ready: "+CPIN: READY"
        case .pin: "+CPIN: SIM PIN"
        case .puk, .blocked: "+CPIN: SIM PUK"
        }
    }
}

extension ModemEngine {
    static let defaultPIN2Tries = 3, defaultPUK2Tries = 10

    var simLock: SIMLock {
        if identity.pinTries == 0 { return identity.pukTries == 0 ? .blocked : .puk }
        if identity.pin == nil || simUnlocked { return .ready }
        return .pin
    }

    /// Commands a module refuses while its SIM waits for PIN or PUK (`+CME ERROR: 11` / `12`): SMS, the
    /// subscriber's identity, attach and the data bearer. Registration reads, identity and set-up still answer.
    static let needsSIM: Set<String> = [
        "+CMGF", "+CNMI", "+CPMS", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CMGW", "+CSCA", "+CSMS", "+CIMI", "+CNUM",
        "+CGATT", "+CGACT", "+NETOPEN", "+QIACT", "+CIPOPEN", "+QIOPEN", "+USOCR", "+CIPSTART",
    ]

    /// The refusal for `command` while the SIM is locked, or nil.
    func simRefusal(_ command: ATCommand) -> Reply? {
        if simBusy && (command.name == "+CPIN" || Self.needsSIM.contains(command.name)) { return Reply(.cme(14)) }
        guard simLock != .ready, Self.needsSIM.contains(command.name) else { return nil }
        return Reply(.cme(simLock == .pin ? 11 : 12))
    }

    /// The boot banners up to the SIM's report, with the report the SIM's state calls for; the rest wait for
    /// the PIN (`simBannersHeld`). A profile without a `+CPIN: READY` banner says nothing about its SIM.
    func bootBanners() -> [String] {
        guard simLock != .ready, let at = profile.bootBanners.firstIndex(of: SIMLock.ready.cpinAnswer) else {
            simBannersHeld = []
            return profile.bootBanners
        }
        simBannersHeld = Array(profile.bootBanners[at...])
        return Array(profile.bootBanners[..<at]) + [simLock.cpinAnswer]
    }

    /// The SIM took its PIN and is not ready yet (`SimTiming.simReadyDelay`): `+CME ERROR: 14` to what needs it.
    var simBusy: Bool { simBusyUntil.map { DispatchTime.now() < $0 } ?? false }

    /// The PIN (or PUK) was accepted: the held banners (after `simReadyDelay`, if any), then registration as
    /// after a boot.
    func simUnlockedNow() -> [[UInt8]] {
        simUnlocked = true
        let held = simBannersHeld
        simBannersHeld = []
        let generation = bootGeneration
        if timing.simReadyDelay > 0 {
            let ready = DispatchTime.now() + timing.simReadyDelay
            simBusyUntil = ready
            queue.asyncAfter(deadline: ready) { [self] in
                guard generation == bootGeneration else { return }
                simBusyUntil = nil
                for line in held { urc(line) }
            }
        }
        queue.asyncAfter(deadline: .now() + timing.registrationDelay) { [self] in
            guard generation == bootGeneration, cfun == 1 else { return }
            setRegistration(1, report: true)
            onReadyForMT?()
        }
        return timing.simReadyDelay > 0 ? [] : held.map { Array($0.utf8) }
    }

    func emitPIN(_ result: String) {
        emit(NetworkEvent("sim-pin", [("result", .string(result)), ("pin-tries", .int(identity.pinTries)),
                                      ("puk-tries", .int(identity.pukTries))]))
    }

    static let simCommands: [String: Handler] = [
        "+CPIN": { e, c in
            switch c.form {
            case .read: return Reply(line: e.simLock.cpinAnswer)
            case .test, .exec: return Reply()
            case .set:
                guard let code = c.string(0) else { return Reply(.cme(50)) }
                switch e.simLock {
                case .ready: return Reply(.cme(3))  // no PIN is pending: operation not allowed
                case .blocked: return Reply(.cme(13))  // SIM failure
                case .pin:
                    guard code == e.identity.pin else {
                        e.identity.pinTries -= 1
                        e.emitPIN("wrong")
                        return Reply(.cme(16))  // incorrect password
                    }
                    e.identity.pinTries = 3
                    e.emitPIN("accepted")
                    var r = Reply()
                    r.after = e.simUnlockedNow()
                    return r
                case .puk:
                    guard let newPIN = c.string(1) else { return Reply(.cme(12)) }  // SIM PUK required
                    guard code == e.identity.puk else {
                        e.identity.pukTries -= 1
                        e.emitPIN("wrong-puk")
                        return Reply(.cme(16))
                    }
                    e.identity.pin = newPIN
                    e.identity.pinTries = 3
                    e.identity.pukTries = 10
                    e.emitPIN("puk-accepted")
                    var r = Reply()
                    r.after = e.simUnlockedNow()
                    return r
                }
            }
        },
    ]

    /// The profile's counter command only: a module does not know the others.
    static func pinCounterCommands(for command: PINCounterCommand) -> [String: Handler] {
        switch command {
        case .spic:
            return ["+SPIC": { e, c in
                c.form == .exec ? Reply(line: "+SPIC: \(e.identity.pinTries),\(e.identity.pukTries),\(defaultPIN2Tries),\(defaultPUK2Tries)")
                    : c.form == .test ? Reply() : Reply(.error)
            }]
        case .qpinc:
            return ["+QPINC": { e, c in
                let sc = "+QPINC: \"SC\",\(e.identity.pinTries),\(e.identity.pukTries)"
                let p2 = "+QPINC: \"P2\",\(defaultPIN2Tries),\(defaultPUK2Tries)"
                switch c.form {
                case .read: return Reply(lines: [sc, p2])
                case .test: return Reply(line: "+QPINC: (\"SC\",\"P2\")")
                case .exec: return Reply(.cme(50))
                case .set:
                    switch c.string(0) {
                    case "SC": return Reply(line: sc)
                    case "P2": return Reply(line: p2)
                    default: return Reply(.cme(50))
                    }
                }
            }]
        case .upincnt:
            return ["+UPINCNT": { e, c in
                c.form == .exec ? Reply(line: "+UPINCNT: \(e.identity.pinTries),\(defaultPIN2Tries),\(e.identity.pukTries),\(defaultPUK2Tries)")
                    : c.form == .test ? Reply() : Reply(.error)
            }]
        case .cpinr:
            return ["+CPINR": { e, c in
                let all = ["SIM PIN,\(e.identity.pinTries),3", "SIM PUK,\(e.identity.pukTries),10",
                           "SIM PIN2,\(defaultPIN2Tries),3", "SIM PUK2,\(defaultPUK2Tries),10"].map { "+CPINR: " + $0 }
                switch c.form {
                case .exec: return Reply(lines: all)
                case .test: return Reply()
                case .read: return Reply(.error)
                case .set:
                    guard let code = c.string(0) else { return Reply(.cme(50)) }
                    let match = all.filter { $0.hasPrefix("+CPINR: \(code),") }
                    return match.isEmpty ? Reply(.cme(50)) : Reply(lines: match)
                }
            }]
        }
    }
}
