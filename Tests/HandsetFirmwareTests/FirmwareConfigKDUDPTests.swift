import HandsetCore
import Testing
@testable import handset_fw

/// The key-delegation carriage keys (docs/firmware.md: kd_transport, gateway_udp, kd_sms_retry).
@Suite struct FirmwareConfigKDUDPTests {
    @Test func withoutGatewayUDPEverythingGoesBySMS() throws {
        let c = try parseConfig(minimalConfig).get()
        #expect(c.kdUDP.mode == .smsOnly && c.kdUDP.port == 0 && c.kdUDP.smsRetry == 60)
    }

    @Test func gatewayUDPAloneTurnsTheFallbackOn() throws {
        let c = try parseConfig(minimalConfig + "gateway_udp = 192.0.2.7:16400\nkd_sms_retry = 15\n").get()
        #expect(c.kdUDP.mode == .udpFallback)
        #expect(c.kdUDP.gateway == IPAddress(192, 0, 2, 7) && c.kdUDP.port == 16400 && c.kdUDP.smsRetry == 15)
    }

    @Test func kdTransportSMSKeepsEverythingOnSMSEvenWithGatewayUDP() throws {
        let c = try parseConfig(minimalConfig + "gateway_udp = 192.0.2.7:16400\nkd_transport = sms\n").get()
        #expect(c.kdUDP.mode == .smsOnly)
    }

    @Test(arguments: [
        ("kd_transport = udp-fallback\n", 0),  // fallback without a gateway address
        ("kd_transport = udp\n", 4),
        ("gateway_udp = 192.0.2.7\n", 4),
        ("gateway_udp = 192.0.2.7:0\n", 4),
        ("gateway_udp = 192.0.2.7:70000\n", 4),
        ("gateway_udp = host:16400\n", 4),
        ("kd_sms_retry = 0\n", 4),
    ])
    func badValuesAreRefusedWithTheirLine(_ extra: String, _ line: Int) {
        guard case .failure(let e) = parseConfig(minimalConfig + extra) else {
            Issue.record("accepted: \(extra)")
            return
        }
        #expect(e.line == line)
    }
}
