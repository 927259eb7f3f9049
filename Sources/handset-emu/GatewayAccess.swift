import Foundation
import EmulatorSupport
import Gateway
import HandsetCore

/// What the scenarios ask of the gateway, wherever it runs: `handset-gateway` as its own process (the default:
/// its /metrics and loopback admin routes), or the in-process Gateway (`--server strongswan`, `torture`).
protocol GatewayAccess: AnyObject, Sendable {
    var counters: GatewayCounters { get }
    /// The strongSwan negotiator's counters; nil without one.
    var ikeCounters: StrongSwanNegotiator.Counters? { get }
    /// A device's key state as the gateway holds it (never a key): nil when unknown.
    func deviceState(_ id: UInt64) throws -> DeviceKeyState?
    /// The opposite party wants to reach the handset: the gateway negotiates a pair and pushes it.
    func push(device: UInt64, selector: TrafficSelector) throws
    /// The opposite party has dropped a pair: the gateway tells the handset.
    func deleteSA(device: UInt64, outbound: UInt32, inbound: UInt32) throws
}

/// What the gateway holds for a device: its epoch, whether a new key waits for the handset's confirm, and the last
/// downlink counter spent (an answer reserves it in the same transaction as its change).
struct DeviceKeyState: Equatable {
    var epoch: Int
    var pendingKey: Bool
    var downCounter: Int64
}

/// The in-process Gateway of the world (answers go out through the simulator's control side).
final class InProcessGatewayAccess: GatewayAccess, @unchecked Sendable {
    unowned let world: EmulatedWorld
    init(world: EmulatedWorld) { self.world = world }

    var counters: GatewayCounters { world.gateway.counters }
    var ikeCounters: StrongSwanNegotiator.Counters? { world.ike?.counters }
    func deviceState(_ id: UInt64) throws -> DeviceKeyState? {
        try world.registry.device(id: id).map { DeviceKeyState(epoch: $0.epoch, pendingKey: $0.pendingKey != nil, downCounter: $0.downCounter) }
    }
    func push(device: UInt64, selector: TrafficSelector) throws {
        world.deliver(world.gateway.push(device: device, selector: selector))
    }
    func deleteSA(device: UInt64, outbound: UInt32, inbound: UInt32) throws {
        world.deliver(world.gateway.deleteSA(device: device, outboundSPI: outbound, inboundSPI: inbound))
    }
}

/// `handset-gateway` as its own process: counters from /metrics, the rest through its admin routes.
final class DaemonGatewayAccess: GatewayAccess, @unchecked Sendable {
    let daemon: GatewayProcess
    init(daemon: GatewayProcess) { self.daemon = daemon }

    /// Every GatewayCounters field, by its /metrics name (`gateway_<snake_case>_total`).
    static var fields: [(String, WritableKeyPath<GatewayCounters, Int>)] { [
        ("received", \.received), ("malformed", \.malformed), ("unknownDevice", \.unknownDevice),
        ("unknownEpoch", \.unknownEpoch), ("integrityFailures", \.integrityFailures), ("counterErrors", \.counterErrors),
        ("logins", \.logins), ("rotations", \.rotations), ("saDelivered", \.saDelivered), ("secrets", \.secrets),
        ("fetches", \.fetches), ("peerReuses", \.peerReuses), ("unexpected", \.unexpected),
        ("wrongCarriage", \.wrongCarriage), ("byUDP", \.byUDP), ("storeFailures", \.storeFailures),
        ("addressRefused", \.addressRefused), ("noProposalChosen", \.noProposalChosen),
        ("authenticationFailed", \.authenticationFailed), ("negotiationTimeouts", \.negotiationTimeouts),
        ("peerUnreachable", \.peerUnreachable), ("negotiationRefused", \.negotiationRefused), ("saPushed", \.saPushed),
        ("addressesBound", \.addressesBound), ("addressInUse", \.addressInUse),
    ] }

    /// A scrape that fails reads as all zero, so a wait on a counter times out rather than passing.
    var counters: GatewayCounters {
        var c = GatewayCounters()
        guard let m = try? daemon.metrics() else { return c }
        for (name, path) in Self.fields {
            c[keyPath: path] = Int(m["gateway_" + MetricName.snakeCase(name) + "_total"] ?? 0)
        }
        return c
    }

    /// From `gateway_ike_*_total`, which only a daemon with `negotiator = strongswan` exports.
    var ikeCounters: StrongSwanNegotiator.Counters? {
        guard let m = try? daemon.metrics(), m["gateway_ike_established_total"] != nil else { return nil }
        var c = StrongSwanNegotiator.Counters()
        for (name, path) in Self.ikeFields { c[keyPath: path] = Int(m["gateway_ike_" + MetricName.snakeCase(name) + "_total"] ?? 0) }
        return c
    }

    static var ikeFields: [(String, WritableKeyPath<StrongSwanNegotiator.Counters, Int>)] { [
        ("established", \.established), ("failed", \.failed), ("peerTransfers", \.peerTransfers),
        ("peerDeletes", \.peerDeletes), ("unknownConnection", \.unknownConnection), ("unmappable", \.unmappable),
        ("busy", \.busy), ("virtualIpRefused", \.virtualIPRefused),
        ("transportWithVirtualIP", \.transportWithVirtualIP), ("deletesWithheld", \.deletesWithheld),
    ] }

    func deviceState(_ id: UInt64) throws -> DeviceKeyState? {
        let r = try daemon.admin("GET", "/admin/device/\(id)")
        if r.status == 404 { return nil }
        guard r.status == 200, let obj = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any],
              let epoch = obj["epoch"] as? Int, let pending = obj["pending_key"] as? Bool,
              let down = obj["down_counter"] as? Int64 else {
            throw ScenarioFailure("admin device \(id): HTTP \(r.status) \(r.body)")
        }
        return DeviceKeyState(epoch: epoch, pendingKey: pending, downCounter: down)
    }

    func push(device: UInt64, selector s: TrafficSelector) throws {
        let q = "device=\(device)&local=\(s.local.dottedQuad)&remote=\(s.remote.dottedQuad)&local_port=\(s.localPort)&remote_port=\(s.remotePort)"
        let r = try daemon.admin("POST", "/admin/push?" + q)
        guard r.status == 202 else { throw ScenarioFailure("admin push: HTTP \(r.status) \(r.body)") }
    }

    func deleteSA(device: UInt64, outbound: UInt32, inbound: UInt32) throws {
        let r = try daemon.admin("POST", "/admin/delete?device=\(device)&outbound=\(outbound)&inbound=\(inbound)")
        guard r.status == 202 else { throw ScenarioFailure("admin delete: HTTP \(r.status) \(r.body)") }
    }

}

/// The emulator's back end for the daemon (`negotiator = socket`, `secret_service = socket`): the opposite
/// party's negotiation and the secret-data service, over the back-end socket in the world's directory.
enum EmulatorBackend {
    static func handler(peer: EmulatedPeer, services: EmuServices) -> @Sendable (BackendRequest) -> BackendResponse {
        { r in
            guard let device = r.deviceID else {
                var bad = BackendResponse(ok: false)
                bad.failure = "refused"; bad.reason = "device id"
                return bad
            }
            switch r.op {
            case .establish:
                guard let sel = r.selector else { return .failed(.refused("establish without a flow")) }
                switch peer.establish(device: device, handset: sel.local, selector: sel, template: r.template ?? 0,
                                      reused: r.reused ?? false) {
                case .success(let t): return .established(t)
                case .failure(let f): return .failed(f)
                }
            case .forget:
                peer.forget(device: device)
                return BackendResponse(ok: true)
            case .secret:
                guard let data = r.data.flatMap(Backend.bytes) else { return BackendResponse(ok: false) }
                var answer = BackendResponse(ok: true)
                answer.reply = services.secret(device: device, channel: r.channel ?? 0, data: data).map { Backend.hex($0) }
                return answer
            }
        }
    }
}
