// V.250 basic commands, identity (TS 27.007 §5) and network (TS 27.007 §7, §10) command tables.

enum RegDomain: String, CaseIterable {
    case cs = "+CREG", ps = "+CGREG", eps = "+CEREG"
    var eventName: String { switch self { case .cs: "CS"; case .ps: "PS"; case .eps: "EPS" } }
}

extension ModemEngine {
    static func setting(_ apply: @escaping @Sendable (ModemEngine, Int) -> Void) -> Handler {
        { e, c in apply(e, c.basicValue ?? 0); return Reply() }
    }

    static let basicCommands: [String: Handler] = [
        "E": setting { e, v in e.echo = v != 0 },
        "V": setting { e, v in e.verbose = v != 0 },
        "Q": setting { e, v in e.quiet = v != 0 },
        "Z": { e, _ in e.restoreProfile(); return Reply() },
        "&F": { e, _ in e.restoreProfile(); return Reply() },
        "&W": { _, _ in Reply() },
        "&D": { _, _ in Reply() },
        "&C": { _, _ in Reply() },
        "X": { _, _ in Reply() },
        "H": { _, _ in Reply() },
        "L": { _, _ in Reply() },
        "M": { _, _ in Reply() },
        "S0": { _, c in c.form == .read ? Reply(line: "000") : Reply() },
        "S3": { _, c in c.form == .read ? Reply(line: "013") : Reply() },
        "S4": { _, c in c.form == .read ? Reply(line: "010") : Reply() },
        "I": { e, _ in Reply(lines: e.profile.atiLines.map(e.expandIdentity)) },
        "+CMEE": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CMEE: \(e.cmee)")
            case .test: return Reply(line: "+CMEE: (0-2)")
            case .set:
                guard let v = c.int(0), (0...2).contains(v) else { return Reply(.cme(50)) }
                e.cmee = v
                return Reply()
            case .exec: e.cmee = 0; return Reply()
            }
        },
        "+CFUN": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CFUN: \(e.cfun)")
            case .test: return Reply(line: "+CFUN: (0,1,4),(0,1)")
            case .exec: return Reply(.cme(50))
            case .set:
                guard let v = c.int(0), [0, 1, 4].contains(v) else { return Reply(.cme(50)) }
                if c.int(1) == 1 {
                    // Reset after answering OK (TS 27.007 §8.2 <rst>=1).
                    e.queue.async { e.reboot(reason: "cfun-reset") }
                    return Reply()
                }
                e.cfun = v
                e.setRegistration(v == 1 && e.simLock == .ready ? 1 : 0, report: true)
                if v == 1 { e.queue.async { e.onReadyForMT?() } }
                return Reply()
            }
        },
        "+CSCS": { _, c in
            switch c.form {
            case .read: return Reply(line: "+CSCS: \"IRA\"")
            case .test: return Reply(line: "+CSCS: (\"IRA\",\"GSM\",\"UCS2\")")
            default: return Reply()
            }
        },
        "+CLIP": { _, _ in Reply() },
        "+CRC": { _, _ in Reply() },
        "+CVHU": { _, _ in Reply() },
        "+IPR": { _, c in c.form == .read ? Reply(line: "+IPR: 115200") : Reply() },
        "+IFR": { _, _ in Reply() },
    ]

    func restoreProfile() {
        echo = true; verbose = true; quiet = false; cmee = 0; cmgf = 0
        cnmi = profile.defaultCNMI
    }

    func expandIdentity(_ template: String) -> String {
        template.replacingOccurrences(of: "%M", with: profile.manufacturer)
            .replacingOccurrences(of: "%N", with: profile.model)
            .replacingOccurrences(of: "%R", with: profile.revision)
            .replacingOccurrences(of: "%I", with: identity.imei)
    }

    static func value(_ f: @escaping @Sendable (ModemEngine) -> String) -> Handler {
        { e, c in c.form == .test ? Reply() : Reply(line: f(e)) }
    }

    static let identityCommands: [String: Handler] = [
        "+CGMI": value { $0.profile.manufacturer },
        "+GMI": value { $0.profile.manufacturer },
        "+CGMM": value { $0.profile.model },
        "+GMM": value { $0.profile.model },
        "+CGMR": value { $0.profile.revisionPrefix + $0.profile.revision },
        "+GMR": value { $0.profile.revision },
        "+GSN": value { $0.identity.imei },
        "+CGSN": { e, c in
            if c.form == .test { return Reply() }
            if c.form == .set, c.int(0) == 1 { return Reply(line: "+CGSN: \"\(e.identity.imei)\"") }
            return Reply(line: e.identity.imei)
        },
        "+CIMI": value { $0.identity.imsi },
        "+CNUM": value { "+CNUM: ,\"\($0.identity.ownNumber)\",\($0.identity.ownNumber.hasPrefix("+") ? 145 : 129)" },
        "+CSQ": { e, c in
            c.form == .test ? Reply(line: "+CSQ: (0-31,99),(0-7,99)")
                : Reply(line: "+CSQ: \(e.regStat == 0 && e.cfun != 1 ? 99 : e.identity.rssi),\(e.identity.ber)")
        },
    ]

    static let networkCommands: [String: Handler] = [
        "+COPS": { e, c in
            switch c.form {
            case .read:
                guard e.isRegistered else { return Reply(line: "+COPS: 0") }
                return Reply(line: "+COPS: 0,\(e.copsFormat),\"\(e.operatorName)\",\(e.profile.accessTechnology)")
            case .test:
                let i = e.identity
                return Reply(line: "+COPS: (2,\"\(i.operatorLong)\",\"\(i.operatorShort)\",\"\(i.operatorNumeric)\",\(e.profile.accessTechnology)),,(0-4),(0-2)")
            case .exec: return Reply()
            case .set:
                guard let m = c.int(0), (0...4).contains(m) else { return Reply(.cme(50)) }
                if let f = c.int(1) { guard (0...2).contains(f) else { return Reply(.cme(50)) }; e.copsFormat = f }
                return Reply()
            }
        },
        "+CREG": registrationHandler(.cs),
        "+CGREG": registrationHandler(.ps),
        "+CEREG": registrationHandler(.eps),
        "+CGDCONT": { e, c in
            switch c.form {
            case .read:
                return Reply(lines: e.pdpContexts.keys.sorted().map { cid in
                    let p = e.pdpContexts[cid]!
                    return "+CGDCONT: \(cid),\"\(p.type)\",\"\(p.apn)\",\"0.0.0.0\",0,0"
                })
            case .test: return Reply(line: "+CGDCONT: (1-16),\"IP\",,,(0-2),(0-4)")
            case .exec: return Reply()
            case .set:
                guard let cid = c.int(0), (1...16).contains(cid) else { return Reply(.cme(50)) }
                if c.args.count == 1 { e.pdpContexts[cid] = nil; return Reply() }
                e.pdpContexts[cid] = (c.string(1) ?? "IP", c.string(2) ?? "")
                return Reply()
            }
        },
        "+CGATT": { e, c in
            switch c.form {
            case .read: return Reply(line: "+CGATT: \(e.attached ? 1 : 0)")
            case .test: return Reply(line: "+CGATT: (0,1)")
            case .exec: return Reply(.cme(50))
            case .set:
                guard let v = c.int(0), v == 0 || v == 1 else { return Reply(.cme(50)) }
                guard e.regStat == 1 || e.regStat == 5 || v == 0 else { return Reply(.cme(30)) } // no network service
                e.attached = v == 1
                e.setRegistration(e.regStat, report: true, domains: [.ps, .eps])
                return Reply()
            }
        },
        "+CGACT": { e, c in
            switch c.form {
            case .read:
                return Reply(lines: e.pdpContexts.keys.sorted().map { "+CGACT: \($0),\(e.pdpActive.contains($0) ? 1 : 0)" })
            case .test: return Reply(line: "+CGACT: (0,1)")
            case .exec: return Reply(.cme(50))
            case .set:
                guard let v = c.int(0), v == 0 || v == 1 else { return Reply(.cme(50)) }
                let cid = c.int(1) ?? 1
                guard e.pdpContexts[cid] != nil else { return Reply(.cme(50)) }
                guard v == 0 || (e.attached && e.isRegistered) else { return Reply(.cme(30)) }
                if v == 1 { e.pdpActive.insert(cid) } else { e.pdpActive.remove(cid) }
                return Reply()
            }
        },
        "+CGPADDR": { e, _ in Reply(lines: e.pdpActive.sorted().map { "+CGPADDR: \($0),\"10.0.0.\($0 + 1)\"" }) },
        "+CSCA": { e, c in
            c.form == .read ? Reply(line: "+CSCA: \"\(e.identity.smscNumber)\",\(e.identity.smscNumber.hasPrefix("+") ? 145 : 129)")
                : Reply()
        },
    ]

    var isRegistered: Bool { regStat == 1 || regStat == 5 }

    var operatorName: String {
        switch copsFormat { case 1: identity.operatorShort; case 2: identity.operatorNumeric; default: identity.operatorLong }
    }

    static func registrationHandler(_ domain: RegDomain) -> Handler {
        { e, c in
            switch c.form {
            case .read:
                let n = e.regReport[domain] ?? 0
                let stat = e.stat(for: domain)
                var line = "\(domain.rawValue): \(n),\(stat)"
                if n >= 2, stat == 1 || stat == 5 { line += e.locationSuffix(domain) }
                return Reply(line: line)
            case .test: return Reply(line: "\(domain.rawValue): (0-2)")
            case .exec: e.regReport[domain] = 0; return Reply()
            case .set:
                guard let n = c.int(0), (0...5).contains(n) else { return Reply(.cme(50)) }
                e.regReport[domain] = min(n, 2)
                return Reply()
            }
        }
    }

    func stat(for domain: RegDomain) -> Int {
        domain == .cs || attached ? regStat : 0
    }

    func locationSuffix(_ domain: RegDomain) -> String {
        let area = hex(identity.lac, digits: 4)
        let ci = hex(identity.cellID, digits: 8)
        return ",\"\(area)\",\"\(ci)\",\(profile.accessTechnology)"
    }

    func hex(_ v: Int, digits: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }

    func registrationURC(_ domain: RegDomain) -> String {
        let stat = stat(for: domain)
        var line = "\(domain.rawValue): \(stat)"
        if (regReport[domain] ?? 0) >= 2, stat == 1 || stat == 5 { line += locationSuffix(domain) }
        return line
    }

    /// Changes the registration state, prints the enabled +CxREG URCs and one JSON event.
    func setRegistration(_ stat: Int, report: Bool, domains: [RegDomain] = RegDomain.allCases) {
        let changed = stat != regStat
        regStat = stat
        if report {
            for domain in domains where (regReport[domain] ?? 0) > 0 { urc(registrationURC(domain)) }
        }
        if changed || !report {
            emit(NetworkEvent("registration", [
                ("stat", .int(stat)), ("ps", .int(self.stat(for: .ps))),
                ("operator", .string(stat == 1 || stat == 5 ? identity.operatorNumeric : "")),
                ("lac", .string(hex(identity.lac, digits: 4))), ("ci", .string(hex(identity.cellID, digits: 8))),
            ]))
        }
    }
}
