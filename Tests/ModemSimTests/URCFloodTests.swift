import BearerDriver
import Foundation
import Testing
@testable import ModemSim

// Issue 13: URCs flood in (datagrams, +CMTI, registration) while the network takes its time over an AT+CMGS
// (slow-sms-send). Driven as the firmware's loop drives the driver (Firmware+Work.swift): the send is started,
// events are taken while it runs, and the answer is picked up when the engine has it. Nothing may be lost and the
// URC queue may not overflow. The blocking send under the same flood overflows the queue: the flood is big enough.
@Suite(.serialized) struct URCFloodTests {
    typealias Rig = DriverAgainstSimulatorTests.Rig
    static let datagrams = 24
    static let messages = 6

    struct Seen {
        var datagrams: Set<[UInt8]> = []
        var stored: Set<Int> = []
        var registrations: [RegistrationStatus] = []
        var readable = false
        /// Events taken while the send was in flight.
        var duringSend = 0
    }

    /// One SMS-SUBMIT as hex, with its TPDU length.
    static func submit() throws -> ([UInt8], Int) {
        let to = try Array("+15550123456".utf8).withUnsafeBytes { try SMSAddress(number: $0) }
        var pdu = [UInt8](repeating: 0, count: 200)
        let payload: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let r = try payload.withUnsafeBytes { d in
            try pdu.withUnsafeMutableBytes { try SMSPDU.encodeSubmit(to: to, data: d, part: 0, options: SMSSubmitOptions(), into: $0) }
        }
        return (Array(Hex.encode(Array(pdu[0..<r.octets])).utf8), r.tpduLength)
    }

    /// The flood, from another thread: datagrams to the module's socket, SMS from the centre, roaming and back.
    static func flood(_ rig: Rig, socket id: Int, from peer: UDPPeerSocket) throws -> (DispatchGroup, Set<[UInt8]>) {
        let port = try #require(rig.sim.socketPort(id))
        let payloads = Set((0..<datagrams).map { i in (0..<100).map { UInt8(truncatingIfNeeded: $0 &+ i &* 31) } })
        let group = DispatchGroup()
        let sim = rig.sim
        nonisolated(unsafe) let peer = peer  // only sends (sendto), and only from this thread
        DispatchQueue.global().async(group: group) {
            for (k, p) in payloads.enumerated() {
                peer.send(p, to: port)
                if k % 4 == 0 { sim.deliverSMS(from: "+15550999", data: [UInt8(k)], portDst: 2948, portSrc: 9200) }
                if k == 8 { sim.setRegistration(5) }
                if k == 16 { sim.setRegistration(1) }
            }
        }
        return (group, payloads)
    }

    func note(_ e: ATEvent, _ seen: inout Seen, socket id: Int) {
        switch e {
        case .socketData(let s, _, let bytes) where s == id: seen.datagrams.insert(Array(bytes))
        case .socketReadable(let s) where s == id: seen.readable = true
        case .smsStored(let index): seen.stored.insert(index)
        case .registration(let r) where r.domain == .circuit:
            if seen.registrations.last != r.status { seen.registrations.append(r.status) }
        default: break
        }
    }

    /// What the module buffered (Quectel, u-blox), read until it has none, as the firmware does.
    func readBuffered(_ rig: Rig, socket id: Int, into seen: inout Seen) throws {
        var buf = [UInt8](repeating: 0, count: 1500)
        while true {
            let r = try buf.withUnsafeMutableBytes { try rig.driver.receiveUDP(socket: id, into: $0) }
            if r.count == 0 { return }
            seen.datagrams.insert(Array(buf[0..<r.count]))
        }
    }

    @Test(arguments: DriverAgainstSimulatorTests.socketProfiles)
    func floodDuringASlowSMSSendLosesNothing(name: String) throws {
        let (rig, id) = try Rig.withUDPSocket(name)
        try rig.driver.enableRegistrationEvents()
        let peer = UDPPeerSocket()
        rig.sim.setFault(FaultRule(kind: .slowSMSSend, value: 2000, trigger: .always))
        let (hex, tpdu) = try Self.submit()
        try hex.withUnsafeBytes { try rig.driver.startSMSSend(pduHex: $0, tpduLength: tpdu) }
        let started = Date()
        var flood: (DispatchGroup, Set<[UInt8]>)?
        var seen = Seen()
        var reference: Int?
        while reference == nil && Date().timeIntervalSince(started) < 10 {
            // The flood starts once the PDU is with the network (at the prompt the module holds MT SMS back).
            if flood == nil && !rig.events.named("fault").isEmpty { flood = try Self.flood(rig, socket: id, from: peer) }
            if let e = try rig.driver.nextEvent(timeoutMs: 20) {
                seen.duringSend += 1
                note(e, &seen, socket: id)
            }
            if rig.driver.engine.commandReady { reference = try rig.driver.smsSendResult() }
        }
        let took = Date().timeIntervalSince(started)
        #expect(reference != nil, "the send never finished")
        #expect(took >= 1.9, "the send was not slow (\(took) s): the fault did not fire")
        let (group, sent) = try #require(flood)
        group.wait()
        let settle = Date().addingTimeInterval(1)
        while Date() < settle {
            if let e = try rig.driver.nextEvent(timeoutMs: 50) { note(e, &seen, socket: id) }
            if seen.readable { seen.readable = false; try readBuffered(rig, socket: id, into: &seen) }
        }
        #expect(seen.duringSend > 8, "only \(seen.duringSend) events during the send: the flood missed it")
        #expect(seen.datagrams.count == sent.count && seen.datagrams.isSubset(of: sent),
                "\(sent.count - seen.datagrams.count) of \(sent.count) datagrams lost")
        #expect(seen.stored.count == Self.messages, "+CMTI seen for \(seen.stored.count) of \(Self.messages) SMS")
        #expect(seen.registrations.suffix(2) == [.roaming, .home], "registration URCs: \(seen.registrations)")
        #expect(rig.driver.engine.stats.urcOverflows == 0)
        #expect(rig.sim.faultCount(.slowSMSSend) == 1)
    }

    /// The control: the same flood during the blocking send overflows the 8 URC slots.
    @Test func theSameFloodOverflowsABlockingSend() throws {
        let (rig, id) = try Rig.withUDPSocket("simcom")
        try rig.driver.enableRegistrationEvents()
        let peer = UDPPeerSocket()
        rig.sim.setFault(FaultRule(kind: .slowSMSSend, value: 2000, trigger: .always))
        let (hex, tpdu) = try Self.submit()
        try hex.withUnsafeBytes { try rig.driver.startSMSSend(pduHex: $0, tpduLength: tpdu) }
        while rig.events.named("fault").isEmpty { _ = try rig.driver.engine.advance(); _ = try rig.driver.nextEvent(timeoutMs: 10) }
        let (group, _) = try Self.flood(rig, socket: id, from: peer)
        _ = try rig.driver.engine.finishCommand()
        group.wait()
        #expect(rig.driver.engine.stats.urcOverflows > 0)
    }
}
