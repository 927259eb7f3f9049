import BearerDriver
import Foundation
import Testing
@testable import ModemSim

// BearerDriver's ATDriver against the simulator over a real pty, per dialect and per fault (issue 3, "Tests").
// The two sides were written apart from the vendors' manuals and meet only on the wire.
@Suite(.serialized) struct DriverAgainstSimulatorTests {
    final class Rig {
        let sim: ModemSimulator
        let events = EventLog()
        let driver: SerialModemDriver
        init(_ profile: ModemProfile, timing: SimTiming = .fast) throws {
            let link = NSTemporaryDirectory() + "modemsim-drv-\(profile.name)-\(UUID().uuidString.prefix(8))"
            let log = events
            sim = ModemSimulator(profile: profile, linkPath: link, timing: timing, events: { log.append($0) })
            try sim.start()
            driver = try Array(link.utf8).withUnsafeBytes { try SerialModemDriver.open(pathBytes: $0) }
        }
        deinit { driver.close(); sim.stop() }

        /// start() once the module has booted, then waiting for registration. (start() in the middle of the
        /// boot banners: `startSurvivesTenBootBanners`.)
        func bringUp(dialect: ModemDialect? = nil) throws {
            let booted = Date().addingTimeInterval(3)
            while Date() < booted, !events.named("registration").contains(where: { $0.int("stat") == 1 }) {
                usleep(10_000)
            }
            events.clear()
            if let dialect { driver.use(dialect) }
            try driver.start(autodetect: dialect == nil)
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline {
                if try driver.registration(.circuit).status.isRegistered { return }
                usleep(20_000)
            }
            Issue.record("module never registered")
        }

        /// A rig for `profile`, brought up with its bearer active and one UDP socket open. `sim800-single` is the
        /// sim800 simulator with the driver's single-connection dialect (the simulator follows AT+CIPMUX).
        static func withUDPSocket(_ profile: String) throws -> (Rig, Int) {
            let single = profile == "sim800-single"
            let rig = try Rig(try #require(ModemProfile.named(single ? "sim800" : profile)))
            try rig.bringUp(dialect: single ? .sim800Single : nil)
            try rig.driver.activateBearer()
            return (rig, try rig.driver.openUDP())
        }

        /// Reads stored SMS `index`, hands it to `handle`, and deletes it only after `handle` returned.
        func consumeSMS<T>(_ index: Int, _ handle: (borrowing SMSMessage) throws -> T) throws -> T {
            let stored = try #require(try driver.smsRead(index: index))
            let bytes = try #require(Hex.decode(String(decoding: stored.pduHex, as: UTF8.self)))
            let m = try bytes.withUnsafeBytes { try SMSPDU.decode($0) }
            let t = try handle(m)
            try driver.smsDelete(index: index)
            return t
        }

        /// The next datagram on socket `id`, whether the module pushes it or announces it for reading.
        func datagram(on id: Int) throws -> [UInt8]? {
            try event { e in
                switch e {
                case .socketData(let s, _, let bytes) where s == id: return Array(bytes)
                case .socketReadable(let s) where s == id:
                    var buf = [UInt8](repeating: 0, count: 1500)
                    guard let r = try? buf.withUnsafeMutableBytes({ try driver.receiveUDP(socket: id, into: $0) }),
                          r.count > 0 else { return nil }
                    return Array(buf[0..<r.count])
                default: return nil
                }
            }
        }

        /// The next event that `match` accepts, within `seconds`.
        func event<T>(within seconds: Double = 3, _ match: (ATEvent) -> T?) throws -> T? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let e = try driver.nextEvent(timeoutMs: 50), let t = match(e) { return t }
            }
            return nil
        }
    }

    static let profiles = ModemProfile.all.map(\.name)
    static let socketProfiles = ["simcom", "quectel", "ublox", "sim800", "sim800-single"]
    static let bannerlessProfiles = ["ublox", "generic"]

    @Test(arguments: profiles)
    func networkStateAttachAndRegistrationURC(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        #expect(String(decoding: try rig.driver.currentOperator().name, as: UTF8.self) == "Handset Emu")
        #expect(try rig.driver.registration(.packet).status.isRegistered)
        try rig.driver.attach(timeoutMs: 5000)
        #expect(try rig.driver.isAttached())
        var csca = [UInt8](repeating: 0, count: 32)
        let n = try csca.withUnsafeMutableBytes { try rig.driver.serviceCentre(into: $0) }
        #expect(String(decoding: csca[0..<n], as: UTF8.self) == "+15550109999")
        // Read form above, URC form here: the network moves us to roaming.
        try rig.driver.enableRegistrationEvents()
        rig.sim.setRegistration(5)
        let reg = try rig.event { if case .registration(let r) = $0, r.domain == .circuit { r } else { nil } }
        #expect(reg?.status == .roaming)
        #expect(try rig.driver.registration(.circuit).status == .roaming)
    }

    /// A module that prints ten ready banners (RDY, +CPIN: READY, SMS Ready, APP RDY) 150 ms apart while still
    /// booting, deaf to AT until the last: each banner ends the AT waiting for an answer as a reboot. start()
    /// begun at power-on rides them out (they no longer use up its three sync tries) and brings the module up.
    @Test func startSurvivesTenBootBanners() throws {
        var profile = ModemProfile.simcom
        profile.bootBanners = (0..<10).map { ["RDY", "+CPIN: READY", "SMS Ready", "APP RDY"][$0 % 4] }
        var timing = SimTiming.fast
        timing.bannerInterval = 0.15
        let rig = try Rig(profile, timing: timing)
        try rig.driver.start()
        #expect(rig.driver.engine.stats.reboots == 10)  // every banner was seen, all of them during start()
        #expect(rig.driver.dialect.vendor == .simcom)
        let deadline = Date().addingTimeInterval(3)
        var registered = false
        while Date() < deadline, !registered {
            registered = try rig.driver.registration(.circuit).status.isRegistered
            usleep(20_000)
        }
        #expect(registered)
        #expect(try rig.driver.signalQuality().rssi == 20)
    }

    /// Banners past the boot time still count: a module that keeps rebooting fails start() instead of holding it.
    @Test func startGivesUpOnBannersPastTheBootTime() throws {
        var profile = ModemProfile.simcom
        profile.bootBanners = Array(repeating: "RDY", count: 40)
        var timing = SimTiming.fast
        timing.bannerInterval = 0.1
        let rig = try Rig(profile, timing: timing)
        let started = Date()
        #expect(throws: ATError.self) { try rig.driver.start(bootTimeMs: 1000) }
        #expect(Date().timeIntervalSince(started) < 3.5)
    }

    @Test func genericHasNoSockets() throws {
        let rig = try Rig(.generic)
        try rig.bringUp()
        #expect(throws: ATError.unsupported) { try rig.driver.openUDP() }
        let payload: [UInt8] = [1, 2, 3]
        #expect(throws: ATError.unsupported) {
            try payload.withUnsafeBytes {
                try rig.driver.sendUDP(socket: 0, to: BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: 9), payload: $0)
            }
        }
        var buf = [UInt8](repeating: 0, count: 64)
        #expect(throws: ATError.unsupported) { try buf.withUnsafeMutableBytes { try rig.driver.receiveUDP(socket: 0, into: $0) } }
        #expect(throws: ATError.unsupported) { try rig.driver.closeSocket(0) }
        #expect(!rig.driver.isSocketOpen(0) && rig.sim.socketPort(0) == nil)
        #expect(try rig.driver.signalQuality().rssi == 20)  // the driver still works
    }

    @Test(arguments: profiles)
    func concatenatedSMSOutOfOrderIsReassembled(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let parts = rig.sim.deliverSMS(from: "+15550999", data: data, portDst: 2948, portSrc: 9200, order: .reverse)
        #expect(parts == 3)
        var reassembler = SMSReassembler<2, 8>(timeout: 60_000)
        var out = [UInt8](repeating: 0, count: 8 * 160)
        var completed: [UInt8]?
        var seqs: [UInt8] = []
        for _ in 0..<parts {
            let index = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
            let result = try rig.consumeSMS(index) { m in
                seqs.append(m.header.concat?.sequence ?? 0)
                return try out.withUnsafeMutableBytes { try reassembler.accept(m, now: 0, into: $0) }
            }
            if case .complete(let r) = result {
                #expect(r.ports?.destination == 2948 && r.parts == 3)
                completed = Array(out[0..<r.count])
            }
        }
        #expect(seqs == [3, 2, 1])
        #expect(completed == data)
        #expect(reassembler.pending == 0 && reassembler.counters.completed == 1)
        #expect(rig.sim.storedSMS == 0)
    }

    @Test(arguments: profiles)
    func bringUpDetectsTheDialect(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        #expect("\(rig.driver.dialect.name)" == name)
        #expect(try rig.driver.simState() == .ready)
        let q = try rig.driver.signalQuality()
        #expect(q.rssi == 20 && q.ber == 99)
        var buf = [UInt8](repeating: 0, count: 64)
        let n = try buf.withUnsafeMutableBytes { try rig.driver.identity("AT+CGSN", into: $0) }
        #expect(String(decoding: buf[0..<n], as: UTF8.self) == "861234050012347")
    }

    @Test(arguments: profiles)
    func smsBothWays(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        // Out: a port-addressed binary SMS built by the driver's codec.
        var options = SMSSubmitOptions()
        options.destinationPort = 9200
        let payload: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let to = try Array("+15550123456".utf8).withUnsafeBytes { try SMSAddress(number: $0) }
        var pdu = [UInt8](repeating: 0, count: 200)
        let r = try payload.withUnsafeBytes { d in
            try pdu.withUnsafeMutableBytes { try SMSPDU.encodeSubmit(to: to, data: d, part: 0, options: options, into: $0) }
        }
        let hex = Array(Hex.encode(Array(pdu[0..<r.octets])).utf8)
        let mr = try hex.withUnsafeBytes { try rig.driver.smsSend(pduHex: $0, tpduLength: r.tpduLength) }
        let mo = try #require(rig.events.wait(for: "sms-mo").first)
        #expect(mo.int("mr") == mr)
        #expect(mo.string("to") == "+15550123456" && mo.string("data") == "DEADBEEF" && mo.int("port-dst") == 9200)
        // In: stored, announced with +CMTI, read, decoded, deleted.
        rig.sim.deliverSMS(from: "+15550999", data: [1, 2, 3], portDst: 2948, portSrc: 9200)
        let index = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
        let stored = try #require(try rig.driver.smsRead(index: index))
        let bytes = try #require(Hex.decode(String(decoding: stored.pduHex, as: UTF8.self)))
        let m = try bytes.withUnsafeBytes { try SMSPDU.decode($0) }
        #expect(m.header.ports?.destination == 2948)
        var out = [UInt8](repeating: 0, count: 160)
        let n = try out.withUnsafeMutableBytes { try m.copyPayload(into: $0) }
        #expect(Array(out[0..<n]) == [1, 2, 3])
        try rig.driver.smsDelete(index: index)
        #expect(rig.sim.storedSMS == 0)
    }

    @Test(arguments: socketProfiles)
    func udpThroughTheModule(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        let peer = UDPPeerSocket()
        let out: [UInt8] = [0x00, 0x0D, 0x0A, 0x1A, 0x40, 0xFF]
        try out.withUnsafeBytes {
            try rig.driver.sendUDP(socket: id, to: BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(peer.port)),
                                   payload: $0)
        }
        let got = try #require(peer.receive())
        #expect(got.bytes == out)
        peer.send([9, 8, 7, 0x0D, 0x0A], to: got.port)
        let received: [UInt8]? = try rig.datagram(on: id)
        #expect(received == [9, 8, 7, 0x0D, 0x0A])
        try rig.driver.closeSocket(id)
        #expect(rig.sim.socketPort(id) == nil)
    }

    // MARK: Faults

    @Test(arguments: profiles)
    func garbageIsSkipped(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .garbage, value: nil, trigger: .always))
        #expect(try rig.driver.signalQuality().rssi == 20)
        #expect(try rig.driver.simState() == .ready)
        #expect(rig.sim.faultCount(.garbage) == 2)
    }

    @Test(arguments: profiles)
    func droppedFinalTimesOutThenRecovers(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .dropFinal, value: nil, trigger: .nth(1)))
        #expect(throws: ATError.timeout) { try rig.driver.signalQuality() }
        #expect(try rig.driver.signalQuality().rssi == 20)
    }

    @Test(arguments: ["simcom", "quectel", "sim800"]) // the profiles that print boot banners
    func rebootMidCommandIsDetected(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .rebootMidCommand, value: nil, trigger: .nth(1)))
        #expect(throws: ATError.self) { try rig.driver.signalQuality() }
        let rebooted = try rig.event { if case .moduleRebooted = $0 { true } else { nil } }
        #expect(rebooted == true)
        try rig.bringUp()
        #expect(try rig.driver.signalQuality().rssi == 20)
    }

    @Test(arguments: profiles)
    func interleavedURCIsKept(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        try rig.driver.enableRegistrationEvents()
        rig.sim.setFault(FaultRule(kind: .interleaveURC, value: nil, trigger: .nth(1)))
        #expect(try rig.driver.signalQuality().rssi == 20)
        #expect(rig.sim.faultCount(.interleaveURC) == 1)
        let reg = try rig.event { if case .registration(let r) = $0 { r } else { nil } }
        #expect(reg?.status.isRegistered == true)
    }

    @Test(arguments: bannerlessProfiles) // no banner: the command times out and start() re-initialises
    func rebootWithoutBannerTimesOutThenStartRecovers(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .rebootMidCommand, value: nil, trigger: .nth(1)))
        #expect(throws: ATError.timeout) { try rig.driver.signalQuality() }
        #expect(rig.sim.faultCount(.rebootMidCommand) == 1)
        try rig.bringUp()
        rig.sim.deliverSMS(from: "+15550999", text: "after reboot")
        let index = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
        let text = try rig.consumeSMS(index) { m in m.payloadCount }
        #expect(text == 12)
        #expect(rig.sim.storedSMS == 0)
    }

    @Test(arguments: profiles)
    func delayedURCStillArrives(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .delayURC, value: 300, trigger: .always))
        rig.sim.deliverSMS(from: "+15550999", text: "later")
        #expect(try rig.event(within: 0.15) { if case .smsStored = $0 { true } else { nil } } == nil)
        #expect(try rig.event(within: 2) { if case .smsStored = $0 { true } else { nil } } == true)
    }

    @Test(arguments: ["simcom", "quectel"]) // the profiles with a full-storage URC
    func fullStorageIsReported(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .smsFull, value: nil, trigger: .always))
        rig.sim.deliverSMS(from: "+15550999", text: "no room")
        #expect(try rig.event { if case .smsStorageFull = $0 { true } else { nil } } == true)
        #expect(rig.sim.pendingSMS == 1)
    }

    /// Full storage while one message waits unhandled: handling it (read, then delete) frees room and
    /// the centre redelivers the refused one; nothing is lost and storage ends empty.
    @Test(arguments: profiles)
    func fullStorageRecoversAfterDelete(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .smsFull, value: nil, trigger: .nth(2)))
        rig.sim.deliverSMS(from: "+15550999", text: "first")
        let first = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
        rig.sim.deliverSMS(from: "+15550999", text: "second")
        let deadline = Date().addingTimeInterval(2)
        while rig.sim.faultCount(.smsFull) == 0 && Date() < deadline { usleep(10_000) }
        #expect(rig.sim.pendingSMS == 1 && rig.sim.storedSMS == 1)
        #expect(try rig.consumeSMS(first) { $0.payloadCount } == 5)
        let second = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
        #expect(try rig.consumeSMS(second) { $0.payloadCount } == 6)
        #expect(rig.sim.pendingSMS == 0 && rig.sim.storedSMS == 0)
    }

    @Test(arguments: socketProfiles)
    func socketClosedByTheNetworkAfterADatagram(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        rig.sim.setFault(FaultRule(kind: .socketClose, value: nil, trigger: .nth(1)))
        let peer = UDPPeerSocket()
        let out: [UInt8] = [0xAA, 0x55]
        let to = BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(peer.port))
        try out.withUnsafeBytes { try rig.driver.sendUDP(socket: id, to: to, payload: $0) }
        let closed = try rig.event { if case .socketClosed(let s) = $0 { s } else { nil } }
        #expect(closed == id || closed == -1)
        #expect(!rig.driver.isSocketOpen(id))
        #expect(throws: ATError.noSuchSocket) { try out.withUnsafeBytes { try rig.driver.sendUDP(socket: id, to: to, payload: $0) } }
        // A fresh socket works again.
        let again = try rig.driver.openUDP()
        try out.withUnsafeBytes { try rig.driver.sendUDP(socket: again, to: to, payload: $0) }
        #expect(rig.sim.faultCount(.socketClose) == 1)
    }

    @Test(arguments: socketProfiles)
    func networkClosedSocketIsReported(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        rig.sim.closeSocketFromNetwork(id)
        let closed = try rig.event { if case .socketClosed(let s) = $0 { s } else { nil } }
        #expect(closed == id)
        #expect(!rig.driver.isSocketOpen(id))
    }

    @Test(arguments: profiles)
    func slowLinkStillWorks(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        rig.sim.setFault(FaultRule(kind: .slowLink, value: 9600, trigger: .always))
        #expect(try rig.driver.signalQuality().rssi == 20)
        #expect("\(try rig.driver.identify().name)" == name)
    }

    /// Random garbage, interleaved and delayed URCs under a stream of commands: the engine resynchronises
    /// and keeps every URC apart, so no command fails, and the faults really fired.
    @Test(arguments: profiles)
    func mixedFaultSoak(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        try rig.driver.enableRegistrationEvents()
        for rule in try FaultPlan.parse("garbage@0.3,interleave-urc@0.3,delay-urc=50@0.5") {
            rig.sim.setFault(rule)
        }
        var ok = 0
        var failures: [ATError] = []
        // interleave-urc repeats the current +CREG, so count changes rather than lines.
        var statuses: [RegistrationStatus] = []
        func drain(_ ms: Int) throws {
            while let e = try rig.driver.nextEvent(timeoutMs: ms) {
                if case .registration(let r) = e, r.domain == .circuit, statuses.last != r.status {
                    statuses.append(r.status)
                }
            }
        }
        for i in 0..<24 {
            if i == 8 { rig.sim.setRegistration(5) }
            if i == 16 { rig.sim.setRegistration(1) }
            do throws(ATError) {
                switch i % 4 {
                case 0: _ = try rig.driver.signalQuality()
                case 1: _ = try rig.driver.simState()
                case 2: _ = try rig.driver.registration(.circuit)
                default: _ = try rig.driver.currentOperator()
                }
                ok += 1
            } catch {
                failures.append(error)
            }
            try drain(0)  // as the firmware loop does between commands
        }
        try drain(300)
        #expect(statuses.suffix(2) == [.roaming, .home], "registration URCs lost or reordered: \(statuses)")
        #expect(ok == 24 && failures.isEmpty, "failures: \(failures)")
        #expect(rig.sim.faultCount(.garbage) > 0 && rig.sim.faultCount(.delayURC) + rig.sim.faultCount(.interleaveURC) > 0)
        for k in [FaultKind.garbage, .interleaveURC, .delayURC] { rig.sim.clearFault(k) }
        let q = try rig.driver.signalQuality()
        #expect(q.rssi == 20 && q.ber == 99)
    }

    @Test(arguments: ["simcom", "quectel", "sim800"])
    func rebootDuringSMSPromptIsTypedAndRecovers(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        let to = try Array("+15550123456".utf8).withUnsafeBytes { try SMSAddress(number: $0) }
        var pdu = [UInt8](repeating: 0, count: 200)
        let payload: [UInt8] = [1, 2, 3]
        let r = try payload.withUnsafeBytes { d in
            try pdu.withUnsafeMutableBytes { try SMSPDU.encodeSubmit(to: to, data: d, part: 0, options: SMSSubmitOptions(), into: $0) }
        }
        let hex = Array(Hex.encode(Array(pdu[0..<r.octets])).utf8)
        rig.sim.setFault(FaultRule(kind: .rebootMidCommand, value: nil, trigger: .nth(1)))
        let t0 = Date()
        #expect(throws: ATError.self) { try hex.withUnsafeBytes { try rig.driver.smsSend(pduHex: $0, tpduLength: r.tpduLength) } }
        #expect(Date().timeIntervalSince(t0) < 10)
        #expect(rig.events.named("sms-mo").isEmpty)  // nothing went out
        #expect(try rig.event { if case .moduleRebooted = $0 { true } else { nil } } == true)
        try rig.bringUp()
        let mr = try hex.withUnsafeBytes { try rig.driver.smsSend(pduHex: $0, tpduLength: r.tpduLength) }
        #expect(rig.events.wait(for: "sms-mo").first?.int("mr") == mr)
    }

    @Test(arguments: socketProfiles)
    func garbageAroundSocketDataKeepsPayloadsIntact(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        rig.sim.setFault(FaultRule(kind: .garbage, value: nil, trigger: .always))
        let peer = UDPPeerSocket()
        let to = BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(peer.port))
        for round in 0..<3 {
            let out: [UInt8] = [UInt8(round), 0x0D, 0x0A, 0x4F, 0x4B, 0x0D, 0x0A, 0xFF]  // "\r\nOK\r\n" inside
            try out.withUnsafeBytes { try rig.driver.sendUDP(socket: id, to: to, payload: $0) }
            let got = try #require(peer.receive())
            #expect(got.bytes == out)
            peer.send(out.reversed(), to: got.port)
            let back: [UInt8]? = try rig.datagram(on: id)
            #expect(back == out.reversed())
        }
        #expect(rig.sim.faultCount(.garbage) > 0)
    }

    @Test(arguments: profiles)
    func interleavedURCInsideSMSReadAndList(name: String) throws {
        let rig = try Rig(try #require(ModemProfile.named(name)))
        try rig.bringUp()
        try rig.driver.enableRegistrationEvents()
        rig.sim.deliverSMS(from: "+15550999", data: [0xC0, 0xFF, 0xEE], portDst: 2948)
        let index = try #require(try rig.event { if case .smsStored(let i) = $0 { i } else { nil } })
        rig.sim.setFault(FaultRule(kind: .interleaveURC, value: nil, trigger: .always))
        let list = try rig.driver.smsList()
        let listed = try #require(rig.driver.smsListEntry(0, in: list))
        #expect(listed.index == index && rig.driver.smsListEntry(1, in: list) == nil)
        var out = [UInt8](repeating: 0, count: 160)
        let n = try rig.consumeSMS(index) { m in try out.withUnsafeMutableBytes { try m.copyPayload(into: $0) } }
        #expect(Array(out[0..<n]) == [0xC0, 0xFF, 0xEE])
        #expect(rig.sim.faultCount(.interleaveURC) >= 2 && rig.sim.storedSMS == 0)
        let reg = try rig.event { if case .registration(let r) = $0 { r } else { nil } }
        #expect(reg?.status == .home)  // the interleaved URCs reached the event queue too
    }

    @Test(arguments: socketProfiles)
    func delayedSocketURCStillDeliversTheDatagram(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        let peer = UDPPeerSocket()
        let to = BearerDriver.UDPEndpoint(address: 0x7F00_0001, port: UInt16(peer.port))
        try [UInt8](repeating: 0x41, count: 4).withUnsafeBytes { try rig.driver.sendUDP(socket: id, to: to, payload: $0) }
        let got = try #require(peer.receive())
        rig.sim.setFault(FaultRule(kind: .delayURC, value: 200, trigger: .always))
        peer.send([5, 6, 7], to: got.port)
        let back: [UInt8]? = try rig.datagram(on: id)
        #expect(back == [5, 6, 7])
        #expect(rig.sim.faultCount(.delayURC) >= 1)
    }

    /// Found by `handset-emu torture` (seed 1, iteration 4): the host was killed at the AT+CMGS prompt, so the
    /// module still waited for a PDU and swallowed every "AT" of the restarted host. start() must end the
    /// prompt first (ESC cancels the message, TS 27.005 §3.5.1), and nothing may be sent.
    @Test(arguments: profiles)
    func startAfterAHostDiedAtTheSMSPrompt(name: String) throws {
        let b = try Bench(try #require(ModemProfile.named(name)))
        defer { b.close() }
        #expect(b.ready())
        #expect(b.client.command("AT+CMGF=0").contains("OK"))
        #expect(b.client.commandToPrompt("AT+CMGS=23", prompt: "> ").contains(">"))
        b.client.write("0011000B9164") // half a PDU, then the host dies
        let driver = try Array(b.link.utf8).withUnsafeBytes { try SerialModemDriver.open(pathBytes: $0) }
        defer { driver.close() }
        try driver.start()
        #expect(try driver.signalQuality().rssi == 20)
        #expect(b.events.named("sms-mo").isEmpty)
        #expect(b.sim.counters.rejectedPDUs == 0)
    }

    /// Found by `handset-emu torture` (seed 1000, iteration 182): the host was killed between
    /// AT+CIPSEND=<id>,<n> and its payload. The module counts n raw bytes (ESC is one of them), so the
    /// restarted host's AT went into the datagram for about a minute. start() must complete the send.
    @Test(arguments: socketProfiles)
    func startAfterAHostDiedAtTheSocketPrompt(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        let peer = UDPPeerSocket()
        let send = switch name {
        case "simcom": "AT+CIPSEND=\(id),1200,\"127.0.0.1\",\(peer.port)\r"
        case "quectel": "AT+QISEND=\(id),1200,\"127.0.0.1\",\(peer.port)\r"
        case "sim800": "AT+CIPUDPMODE=\(id),2,\"127.0.0.1\",\(peer.port);+CIPSEND=\(id),1200\r"
        case "sim800-single": "AT+CIPUDPMODE=2,\"127.0.0.1\",\(peer.port);+CIPSEND=1200\r"
        default: "AT+USOST=\(id),\"127.0.0.1\",\(peer.port),1000\r"
        }
        try (send + "E\u{1}").utf8.withContiguousStorageIfAvailable { b in
            try rig.driver.engine.transport.write(UnsafeRawBufferPointer(b), timeoutMs: 1000)
        }
        usleep(200_000)  // the prompt and two payload bytes are in; the host dies here
        try rig.driver.start(autodetect: name != "sim800-single")
        #expect(try rig.driver.signalQuality().rssi == 20)
        // The half-sent datagram went out completed: the dead host's two bytes, then only what start() wrote
        // while it recovered (AT, ESC, carriage returns).
        let stray = try #require(peer.receive())
        #expect(stray.bytes.count == (name == "ublox" ? 1000 : 1200) && Array(stray.bytes.prefix(2)) == [0x45, 0x01])
        #expect(stray.bytes.dropFirst(2).allSatisfy { Array("AT\r\u{1B}".utf8).contains($0) })
        try [UInt8]([9, 8, 7]).withUnsafeBytes { try rig.driver.sendUDP(socket: id, to: .init(address: 0x7F00_0001, port: UInt16(peer.port)), payload: $0) }
        #expect(peer.receive()?.bytes == [9, 8, 7])
    }
}
