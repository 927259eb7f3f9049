import Foundation
import Gateway
@testable import GatewayDaemon
import HandsetCore
import Logging
import Testing

@Suite struct KDDatagramServiceTests {
    static func send(_ bytes: [UInt8], to port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// A datagram without the non-ESP marker is counted and dropped; a login (SMS-only) that came by UDP reaches
    /// the Gateway through the device queue and is refused there, unanswered.
    @Test func datagramsReachTheGatewayThroughTheDeviceQueue() async throws {
        let a = PerDeviceConcurrencyTests.a
        let (gateway, login) = try PerDeviceConcurrencyTests.world(peer: StallingPeer(stalling: 0))
        let metrics = GatewayMetrics()
        let smsSent = LockedBox(0)
        let service = KDDatagramService(gateway: gateway, serializer: DeviceSerializer(), metrics: metrics,
                                        logger: Logger(label: "test"), sendSMS: { d in smsSent.update { $0 += d.count } })
        let port = try service.bind(host: "127.0.0.1", port: 0)
        Self.send([1, 2, 3, 4, 5, 6], to: port)
        Self.send([0, 0, 0, 0] + login[a]!, to: port)
        let deadline = Date().addingTimeInterval(3)
        while gateway.counters.wrongCarriage == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(gateway.counters.wrongCarriage == 1)
        #expect(gateway.counters.logins == 0 && smsSent.get() == 0)
        let text = metrics.exposition()
        #expect(text.contains(#"gateway_udp_datagrams_total{kind="malformed"} 1"#))
        #expect(text.contains(#"gateway_udp_datagrams_total{kind="received"} 1"#))
        try? await service.group.shutdownGracefully()
    }
}
