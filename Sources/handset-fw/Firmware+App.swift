import BearerDriver
import CHandsetShim
import HandsetCore

/// The local datagram interface (docs/firmware.md §App interface). Requests from the app:
///   0x00 REGISTER                                            no other effect
///   0x01 SEND   dst-ip(4) dst-port(2) src-port(2) payload   protect per the SPD and send as ESP-in-UDP
///   0x02 SECRET channel(2) payload                          over SMS only, inside key delegation
///   0x03 FETCH  url                                          the gateway fetches it over https
///   0x04 STATUS (Firmware+KDUDP.swift)
///   0x05 COUNTERS (Firmware+Status.swift): answered to the asker, which does not become the app
/// Answers to the app (the owner's socket that sent the last known request; others are refused, AppSocket.swift):
///   0x81 RECV   src-ip(4) src-port(2) dst-port(2) payload   a decrypted datagram
///   0x82 SECRET channel(2) payload
///   0x83 FETCH  request(2) http-status(2) truncated(1) body
///   0x84 EVENT  code(1) [spi(4)]: 1 sent, 2 waiting for key, 3 discarded, 4 bypass refused, 5 SA installed, 6 failed
enum AppOp {
    static let register: UInt8 = 0x00, send: UInt8 = 0x01, secret: UInt8 = 0x02, fetch: UInt8 = 0x03
    static let recv: UInt8 = 0x81, secretIn: UInt8 = 0x82, fetchIn: UInt8 = 0x83, event: UInt8 = 0x84

    static func isRequest(_ op: UInt8) -> Bool { op <= counters }
}

enum AppEvent: UInt8 { case sent = 1, waitingForKey = 2, discarded = 3, clearRefused = 4, saInstalled = 5, failed = 6, smsUnavailable = 7 }

extension Firmware {
    mutating func pollApp() {
        var request = InlineArray<1024, UInt8>(repeating: 0)
        let n = withUnsafeMutableBytes(of: &request) { appSocket.receive(into: $0) }
        guard n > 0 else { return }
        withUnsafeBytes(of: request) { b in
            let req = UnsafeRawBufferPointer(rebasing: b[0..<n])
            var r = WireReader(req)
            switch r.u8() {  // a known request from the owner (AppSocket.receive)
            case AppOp.register:
                break
            case AppOp.send:
                let ip = r.u32(), dport = r.u16(), sport = r.u16()
                guard r.ok else { return }
                let sel = TrafficSelector(local: kd.innerAddress, remote: IPAddress(v4: ip), localPort: sport, remotePort: dport)
                sealAndSend(r.rest(), selector: sel, holdIfNoKey: true)
            case AppOp.secret:
                let channel = r.u16()
                guard r.ok, kd.sendSecret(channel: channel, r.rest()) else { return event(kdRefusal) }
                flushOutbox()
            case AppOp.fetch:
                guard kd.fetch(r.rest()) != nil else { return event(kdRefusal) }
                flushOutbox()
            case AppOp.status:
                reportStatus(r.rest())
            case AppOp.counters:
                reportCounters()
            default:
                break
            }
        }
    }

    /// Seals per policy and sends through the module's UDP socket. Nothing matching a protect rule leaves in clear.
    mutating func sealAndSend(_ payload: UnsafeRawBufferPointer, selector: TrafficSelector, holdIfNoKey: Bool) {
        let result = withUnsafeMutableBytes(of: &wire) { out in plane.seal(payload, selector: selector, into: out) }
        switch result {
        case .packet(let n, let peer, let port):
            // SAs with IPv6 peers are refused at install; never send to a truncated address.
            guard !peer.isV6 else { stats.espDropped &+= 1; return event(.failed) }
            // Callers wait for an idle modem (Firmware.run); the payload is copied, the app hears on completion.
            guard job == .idle else { modemError("ESP send", .commandInvalid); return event(.failed) }
            var failure: ATError?
            withUnsafeBytes(of: &wire) { w in
                do throws(ATError) {
                    try driver.startSendUDP(socket: espSocket, to: UDPEndpoint(address: peer.v4, port: port),
                                            payload: UnsafeRawBufferPointer(rebasing: w[0..<n]))
                } catch {
                    failure = error
                }
            }
            if let failure { modemError("ESP send", failure); event(.failed) } else { job = .espSend }
        case .needsKey(let rule, let template):
            // Ask for what the policy covers: a rule open on local ports gets one SA for all of them.
            var wanted = selector
            if rule >= 0, plane.spd[rule].pattern.localPorts == .any { wanted.localPort = 0 }
            kd.requestKey(template: template, selector: wanted, now: Self.nowSeconds())
            flushOutbox()
            if holdIfNoKey {
                var h = HeldDatagram()
                h.selector = selector
                h.since = Self.nowSeconds()
                h.payload.fill { o in
                    let k = min(o.count, payload.count)
                    if k > 0 { o.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: k) }
                    return k
                }
                held.push(h)
            }
            event(.waitingForKey)
        case .bypass:
            event(.clearRefused)  // the handset sends nothing in clear on the Internet bearer
        case .discard:
            event(.discarded)
        case .failed:
            event(.failed)
        }
    }

    mutating func handleESP(_ bytes: UnsafeRawBufferPointer) {
        var plain = InlineArray<2048, UInt8>(repeating: 0)
        let opened = withUnsafeMutableBytes(of: &plain) { out -> OpenResult? in
            do throws(ESPError) { return try plane.open(bytes, into: out) } catch { return nil }
        }
        guard let r = opened else {
            stats.espDropped &+= 1
            return
        }
        guard case .datagram(let sel, let range) = r else { return }
        stats.espIn &+= 1
        if wantsTUN(sel) { return withUnsafeBytes(of: plain) { b in toTUN(sel, UnsafeRawBufferPointer(rebasing: b[range])) } }
        withUnsafeBytes(of: plain) { b in
            toApp(AppOp.recv, UnsafeRawBufferPointer(rebasing: b[range])) { w in
                w.u32(sel.remote.v4); w.u16(sel.remotePort); w.u16(sel.localPort)
            }
        }
    }

    /// After the client has run: new SAs, held datagrams, answers for the app, queued SMS.
    mutating func afterKeyDelegation() {
        let c = kd.counters
        if c.saOutsidePolicy &+ c.saPeerLimit &+ c.saIPv6Refused != stats.saRefusalsLogged {
            stats.saRefusalsLogged = c.saOutsidePolicy &+ c.saPeerLimit &+ c.saIPv6Refused
            LogLine("fw: SA transfer refused; so far: outside policy ").append(c.saOutsidePolicy)
                .append(", peer at its push cap ").append(c.saPeerLimit).append(", IPv6 peer ").append(c.saIPv6Refused).emit()
        }
        if c.addressesAdopted != stats.addressesLogged {
            stats.addressesLogged = c.addressesAdopted
            let a = kd.innerAddress.v4
            LogLine("fw: inner address is now ").append(a >> 24).append(".").append(a >> 16 & 0xFF).append(".")
                .append(a >> 8 & 0xFF).append(".").append(a & 0xFF).append(" (bound by the gateway: the server's pool chose it)").emit()
            addressTUN()
        }
        while let e = kd.installed.pop() {
            LogLine("fw: SA pair installed out=").append(e.outboundSPI).append(" in=").append(e.inboundSPI).emit()
            event(.saInstalled, spi: e.outboundSPI)
            if e.requestID == 0 && !announceDue.push(e.outboundSPI) { log("SA announcement dropped (queue full)") }
        }
        while let m = kd.inbox.pop() {
            m.bytes.withBytes { data in
                if m.type == .secretData {
                    toApp(AppOp.secretIn, data) { w in w.u16(m.channelOrRequest) }
                } else {
                    toApp(AppOp.fetchIn, data) { w in w.u16(m.channelOrRequest); w.u16(m.httpStatus); w.u8(m.truncated ? 1 : 0) }
                }
            }
        }
        flushOutbox()
        flushHeld()
    }

    /// After a push, one authenticated dummy packet (next header 59) tells the peer where the handset is now
    /// (RFC 3948 NAT-T learns endpoints only from authenticated packets).
    mutating func announce(outboundSPI spi: UInt32) {
        guard let slot = plane.sas.slot(spi: spi, direction: .outbound),
              let p = plane.sas.snapshot(slot: slot)?.params else { return }
        let n = withUnsafeMutableBytes(of: &wire) { out in
            (try? plane.sas.seal(slot: slot, payload: UnsafeRawBufferPointer(start: nil, count: 0), nextHeader: IPProto.noNext, into: out)) ?? 0
        }
        guard n > 0 else { return }
        var failure: ATError?
        withUnsafeBytes(of: &wire) { w in
            do throws(ATError) {
                try driver.startSendUDP(socket: espSocket, to: UDPEndpoint(address: p.peer.v4, port: p.peerPort),
                                        payload: UnsafeRawBufferPointer(rebasing: w[0..<n]))
            } catch {
                failure = error
            }
        }
        if let failure { modemError("SA announcement", failure) } else { job = .announce }
    }

    func event(_ e: AppEvent, spi: UInt32 = 0) {
        toApp(AppOp.event, UnsafeRawBufferPointer(start: nil, count: 0)) { w in w.u8(e.rawValue); w.u32(spi) }
    }

    func toApp(_ op: UInt8, _ payload: UnsafeRawBufferPointer, header: (inout WireWriter) -> Void) {
        guard appSocket.hasApp else { return }
        var buf = InlineArray<600, UInt8>(repeating: 0)
        withUnsafeMutableBytes(of: &buf) { b in
            var w = WireWriter(b)
            w.u8(op)
            header(&w)
            w.bytes(UnsafeRawBufferPointer(rebasing: payload[0..<min(payload.count, 560)]))
            guard w.ok else { return }
            appSocket.send(UnsafeRawBufferPointer(rebasing: b[0..<w.count]))
        }
    }
}
