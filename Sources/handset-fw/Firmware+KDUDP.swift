import BearerDriver
import HandsetCore

/// Key delegation over UDP when SMS is unavailable (docs/key-delegation.md §1, docs/firmware.md):
///   kd_transport = sms | udp-fallback     default: udp-fallback when gateway_udp is set, else sms
///   gateway_udp  = ADDR:PORT              the gateway's key-delegation UDP port
///   kd_sms_retry = SECONDS                after a failed SMS send, how long UDP is used before SMS is tried again
/// Datagrams are `non-ESP marker (4 zero octets) || message` and share the ESP-in-UDP module socket.
struct KDUDPConfig {
    var transport: KDTransportMode? = nil
    var gateway = IPAddress.anyV4
    var port: UInt16 = 0
    var smsRetry: UInt64 = 60

    var mode: KDTransportMode { port != 0 && transport != .smsOnly ? .udpFallback : .smsOnly }
}

extension FirmwareConfig {
    mutating func applyKDUDP(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int) throws(ConfigError) -> Bool {
        if bytesEqual(k, "kd_transport") {
            if bytesEqual(v[0], "sms") { kdUDP.transport = .smsOnly }
            else if bytesEqual(v[0], "udp-fallback") { kdUDP.transport = .udpFallback }
            else { throw ConfigError(line: line, reason: "kd_transport: sms or udp-fallback") }
        } else if bytesEqual(k, "gateway_udp") {
            guard case let (addr, port)? = parseIPv4AndNumber(v[0], separator: 0x3A, max: 65535), port > 0 else {
                throw ConfigError(line: line, reason: "gateway_udp: ADDRESS:PORT")
            }
            kdUDP.gateway = addr
            kdUDP.port = UInt16(port)
        } else if bytesEqual(k, "kd_sms_retry") {
            guard let s = parseUInt(v[0], max: 86_400), s > 0 else { throw ConfigError(line: line, reason: "kd_sms_retry: 1...86400 s") }
            kdUDP.smsRetry = s
        } else {
            return false
        }
        return true
    }

    func checkKDUDP() throws(ConfigError) {
        guard kdUDP.transport != .udpFallback || kdUDP.port != 0 else {
            throw ConfigError(line: 0, reason: "kd_transport = udp-fallback needs gateway_udp")
        }
    }
}

/// STATUS on the app interface: 0x04 [outbound SPI(4) inbound SPI(4)] asks, 0x85 answers
///   SAs(2) ESP in(4) ESP dropped(4) KD by UDP out(4) KD by UDP in(4) SMS available(1) wrong carriage(4) refused(4)
///   app datagrams refused(4) [pair present(1)]
extension AppOp {
    static let status: UInt8 = 0x04, statusIn: UInt8 = 0x85
}

extension Firmware {
    /// Everything the module's socket delivers: key delegation (non-ESP marker) or ESP. With kd_transport = sms
    /// a marked datagram goes to the data plane, which counts it as non-ESP and drops it.
    mutating func handleModuleDatagram(_ bytes: UnsafeRawBufferPointer) {
        guard kd.carriage.mode == .udpFallback, KD.isKeyDelegationDatagram(bytes) else { return handleESP(bytes) }
        let message = UnsafeRawBufferPointer(rebasing: bytes[KD.nonESPMarkerLength...])
        let r = kd.receive(message, via: .udp, now: Self.nowSeconds(), plane: &plane)
        log("key-delegation datagram by UDP")
        logReceive(r)
        afterKeyDelegation()
    }

    /// Starts sending the same sealed bytes as the SMS would carry, behind the marker, to gateway_udp.
    mutating func startKDDatagram(_ m: KDOutgoing) -> Bool {
        guard kd.carriage.mode == .udpFallback, espSocket >= 0, job == .idle else { return false }
        var out = InlineArray<520, UInt8>(repeating: 0)  // marker + the largest message
        let n = withUnsafeMutableBytes(of: &out) { o -> Int in
            m.bytes.withBytes { b -> Int in
                guard b.count > 0, b.count + KD.nonESPMarkerLength <= o.count else { return 0 }
                (o.baseAddress! + KD.nonESPMarkerLength).copyMemory(from: b.baseAddress!, byteCount: b.count)
                return b.count + KD.nonESPMarkerLength
            }
        }
        guard n > 0 else { return false }
        let to = UDPEndpoint(address: config.kdUDP.gateway.v4, port: config.kdUDP.port)
        var failure: ATError?
        withUnsafeBytes(of: &out) { o in
            do throws(ATError) {
                try driver.startSendUDP(socket: espSocket, to: to, payload: UnsafeRawBufferPointer(rebasing: o[0..<n]))
            } catch {
                failure = error
            }
        }
        if let failure {
            modemError("key-delegation UDP send", failure)
            return false
        }
        job = .kdDatagram
        return true
    }

    /// Secret data or a fetch could not go by SMS and must not go by UDP: refused to the application.
    mutating func refuseSMSOnly(_ m: KDOutgoing) {
        kd.carriage.noteDropped()
        LogLine("fw: key-delegation dropped (SMS unavailable, SMS-only), type ").append(m.type.rawValue).emit()
        event(.smsUnavailable)
    }

    /// Why a SECRET or FETCH request was refused.
    var kdRefusal: AppEvent { kd.carriage.smsAvailable ? .failed : .smsUnavailable }

    /// `request` may name an SA pair, outbound SPI(4) inbound SPI(4): the answer then ends with one octet,
    /// bit 0 set if the outbound SA is installed, bit 1 if the inbound one is.
    func reportStatus(_ request: UnsafeRawBufferPointer) {
        let c = kd.carriage.counters
        var r = WireReader(request)
        let out = r.u32(), inb = r.u32()
        let asked = r.ok
        toApp(AppOp.statusIn, UnsafeRawBufferPointer(start: nil, count: 0)) { w in
            w.u16(UInt16(truncatingIfNeeded: plane.sas.count))
            w.u32(UInt32(truncatingIfNeeded: stats.espIn))
            w.u32(UInt32(truncatingIfNeeded: stats.espDropped))
            w.u32(UInt32(truncatingIfNeeded: c.udpSent))
            w.u32(UInt32(truncatingIfNeeded: c.udpReceived))
            w.u8(kd.carriage.smsAvailable ? 1 : 0)
            w.u32(UInt32(truncatingIfNeeded: kd.counters.wrongCarriage))
            w.u32(UInt32(truncatingIfNeeded: c.refused))
            w.u32(UInt32(truncatingIfNeeded: appSocket.refused))
            if asked {
                w.u8((plane.sas.slot(spi: out, direction: .outbound) != nil ? 1 : 0)
                     | (plane.sas.slot(spi: inb, direction: .inbound) != nil ? 2 : 0))
            }
        }
    }
}
