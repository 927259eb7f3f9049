import Gateway
@testable import GatewayDaemon
import HandsetCore
import Testing

@Suite struct GatewayMetricsTests {
    /// Each negotiation is counted by outcome and timed; the core's counters only ever add what is new.
    @Test func negotiationsByOutcomeAndCountersByDifference() {
        let metrics = GatewayMetrics()
        let measured = MeasuredNegotiator(StallingPeer(stalling: 0), metrics: metrics)  // establish: always a timeout
        let sel = TrafficSelector(local: IPAddress(10, 0, 0, 2), remote: IPAddress(192, 0, 2, 1), localPort: 0, remotePort: 7)
        for _ in 0..<2 { _ = measured.establish(device: 1, handset: IPAddress(10, 0, 0, 2), selector: sel, template: 1, reused: false) }
        metrics.recordMessage(type: "login", seconds: 0.003)
        var c = GatewayCounters()
        c.logins = 2
        metrics.observe(c)
        metrics.observe(c)  // the same snapshot twice adds nothing
        let text = metrics.exposition()
        #expect(text.contains(#"gateway_negotiations_total{outcome="timeout"} 2"#))
        #expect(text.contains(#"gateway_negotiation_duration_seconds_count{outcome="timeout"} 2"#))
        #expect(text.contains(#"gateway_message_duration_seconds_bucket{type="login",le="0.005"} 1"#))
        #expect(text.contains("\ngateway_logins_total 2\n"))
    }

    @Test(arguments: [("unexpectedPDUs", "unexpected_pdus"), ("byUDP", "by_udp"), ("saDelivered", "sa_delivered"),
                      ("badUDH", "bad_udh"), ("received", "received")])
    func snakeCase(name: String, expected: String) {
        #expect(MetricName.snakeCase(name) == expected)
    }
}
