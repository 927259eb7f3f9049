import Foundation
import Gateway
import HandsetCore
import CoreMetrics
import Metrics
import Prometheus
import SMPP

/// The daemon's metrics through swift-metrics, exported by swift-prometheus. Every `GatewayCounters` and
/// `ESMECounters` field becomes a `_total` counter (found by reflection, so a field added later is exported too);
/// the core's counters are snapshots, so each observation adds the difference since the last one.
public final class GatewayMetrics: @unchecked Sendable {
    public let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let lock = NSLock()
    private var lastGateway: [String: Int] = [:]
    private var lastESME: [String: Int] = [:]
    private var lastIKE: [String: Int] = [:]
    private var counters: [String: CoreMetrics.Counter] = [:]
    let smppBound: CoreMetrics.Gauge
    let registryOpen: CoreMetrics.Gauge
    let reassemblyIncomplete: CoreMetrics.Gauge
    let inFlight: CoreMetrics.Gauge
    let devicesWaiting: CoreMetrics.Gauge
    let outboxParts: CoreMetrics.Gauge

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        // SMS latencies run from tens of milliseconds to tens of seconds (concatenation, retries).
        f.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                             .milliseconds(250), .seconds(1), .milliseconds(2500), .seconds(5),
                                             .seconds(10), .seconds(30)]
        factory = f
        smppBound = CoreMetrics.Gauge(label: "gateway_smpp_bound", factory: f)
        registryOpen = CoreMetrics.Gauge(label: "gateway_registry_open", factory: f)
        reassemblyIncomplete = CoreMetrics.Gauge(label: "gateway_reassembly_incomplete", factory: f)
        inFlight = CoreMetrics.Gauge(label: "gateway_messages_in_flight", factory: f)
        devicesWaiting = CoreMetrics.Gauge(label: "gateway_devices_waiting_for_worker", factory: f)
        outboxParts = CoreMetrics.Gauge(label: "gateway_smpp_outbox_parts", factory: f)
        observe(GatewayCounters())
        observe(ESMECounters())
    }

    private var refreshers: [@Sendable () -> Void] = []

    /// `refresh` runs before each scrape, to publish counters that live elsewhere.
    public func onScrape(_ refresh: @escaping @Sendable () -> Void) { lock.withLock { refreshers.append(refresh) } }

    /// The Prometheus text exposition format (version 0.0.4).
    public func exposition() -> String {
        for r in lock.withLock({ refreshers }) { r() }
        return registry.emitToString()
    }

    public func observe(_ c: GatewayCounters) { add(Self.fields(c), prefix: "gateway_", last: \.lastGateway) }
    /// The strongSwan negotiator's counters (negotiator = strongswan only): `gateway_ike_<field>_total`.
    public func observe(_ c: StrongSwanNegotiator.Counters) {
        var f = Self.fields(c)
        f["virtualIpRefused"] = f.removeValue(forKey: "virtualIPRefused")  // virtual_ip_refused, not virtual_iprefused
        add(f, prefix: "gateway_ike_", last: \.lastIKE)
    }
    public func observe(_ c: ESMECounters) {
        var f = Self.fields(c)
        f["malformed"] = c.malformedTotal
        add(f, prefix: "gateway_smpp_", last: \.lastESME)
    }

    /// One handled uplink: how long the core took, by message type.
    public func recordMessage(type: String, seconds: Double) {
        CoreMetrics.Timer(label: "gateway_message_duration_seconds", dimensions: [("type", type)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// From the SMSC's deliver_sm (last part) to the answers queued for submit_sm.
    public func recordRoundTrip(seconds: Double) {
        CoreMetrics.Timer(label: "gateway_sms_round_trip_seconds", factory: factory).recordNanoseconds(Int64(seconds * 1e9))
    }

    public func recordNegotiation(outcome: String, seconds: Double) {
        CoreMetrics.Counter(label: "gateway_negotiations_total", dimensions: [("outcome", outcome)], factory: factory).increment()
        CoreMetrics.Timer(label: "gateway_negotiation_duration_seconds", dimensions: [("outcome", outcome)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// UDP carriage: datagrams received, without the marker (malformed), and answers sent.
    public func countDatagram(_ what: String) {
        CoreMetrics.Counter(label: "gateway_udp_datagrams_total", dimensions: [("kind", what)], factory: factory).increment()
    }

    /// Parts of concatenated uplinks handed back to the SMSC unassembled (timed out, or the bound was reached).
    public func recordEvicted(parts n: Int) {
        guard n > 0 else { return }
        CoreMetrics.Counter(label: "gateway_reassembly_evicted_parts_total", factory: factory).increment(by: Int64(n))
    }

    private func add(_ now: [String: Int], prefix: String, last: ReferenceWritableKeyPath<GatewayMetrics, [String: Int]>) {
        lock.withLock {
            for (name, value) in now {
                let label = prefix + MetricName.snakeCase(name) + "_total"
                let counter = counters[label] ?? CoreMetrics.Counter(label: label, factory: factory)
                counters[label] = counter
                let delta = value - (self[keyPath: last][name] ?? 0)
                if delta > 0 { counter.increment(by: Int64(delta)) }
                self[keyPath: last][name] = max(value, self[keyPath: last][name] ?? 0)
            }
        }
    }

    /// The Int fields of a counters struct, by name.
    static func fields<T>(_ value: T) -> [String: Int] {
        var out: [String: Int] = [:]
        for child in Mirror(reflecting: value).children {
            if let name = child.label, let v = child.value as? Int { out[name] = v }
        }
        return out
    }

}

/// Wraps the IKE engine (or the emulated peer) to count each negotiation by outcome and time it.
final class MeasuredNegotiator: PeerNegotiator, @unchecked Sendable {
    let inner: PeerNegotiator
    let metrics: GatewayMetrics

    init(_ inner: PeerNegotiator, metrics: GatewayMetrics) {
        self.inner = inner
        self.metrics = metrics
    }

    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure> {
        let start = Date()
        let r = inner.establish(device: device, handset: handset, selector: selector, template: template, reused: reused)
        let outcome: String
        switch r {
        case .success: outcome = "established"
        case .failure(.noProposalChosen): outcome = "no_proposal_chosen"
        case .failure(.authenticationFailed): outcome = "authentication_failed"
        case .failure(.timeout): outcome = "timeout"
        case .failure(.unreachable): outcome = "unreachable"
        case .failure(.refused): outcome = "refused"
        }
        metrics.recordNegotiation(outcome: outcome, seconds: Date().timeIntervalSince(start))
        return r
    }

    func forget(device: UInt64) { inner.forget(device: device) }
    func withdraw(device: UInt64, transfer: KDSATransfer) { inner.withdraw(device: device, transfer: transfer) }
}
