import Foundation
import HandsetCore

/// The gateway's back-end protocol: how `handset-gateway` reaches an opposite party's negotiator (`negotiator =
/// socket`) and a secret-data service (`secret_service = socket`) that run as their own processes. One JSON object
/// per line over a Unix stream socket, one request and one answer per connection (docs/gateway.md, Back-end socket).
/// The socket carries SA keys and secret data: it lives in a directory only the gateway's user can enter.
public struct BackendRequest: Codable, Sendable, Equatable {
    public enum Op: String, Codable, Sendable { case establish, forget, secret }
    public var op: Op
    /// Decimal: JSON numbers lose 64-bit ids.
    public var device: String
    /// `establish`: the handset's address, the flow (the handset's view) and what the gateway knows.
    public var handset: String?
    public var remote: String?
    public var localPort: UInt16?
    public var remotePort: UInt16?
    public var template: UInt16?
    public var reused: Bool?
    /// `secret`: the channel and the data, as hex.
    public var channel: UInt16?
    public var data: String?

    public init(op: Op, device: UInt64) {
        self.op = op
        self.device = String(device)
    }

    public var deviceID: UInt64? { UInt64(device) }

    public static func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                                 reused: Bool) -> BackendRequest {
        var r = BackendRequest(op: .establish, device: device)
        r.handset = handset.dottedQuad
        r.remote = selector.remote.dottedQuad
        r.localPort = selector.localPort
        r.remotePort = selector.remotePort
        r.template = template
        r.reused = reused
        return r
    }

    /// The flow of an `establish`, or nil when a field is missing or not an address.
    public var selector: TrafficSelector? {
        guard let h = handset.flatMap(IPAddress.init(dottedQuad:)), let r = remote.flatMap(IPAddress.init(dottedQuad:)),
              let lp = localPort, let rp = remotePort else { return nil }
        return TrafficSelector(local: h, remote: r, localPort: lp, remotePort: rp)
    }
}

public struct BackendResponse: Codable, Sendable, Equatable {
    public var ok: Bool
    /// `establish`: the handset's half as an sa-transfer body (docs/key-delegation.md §4), hex.
    public var transfer: String?
    /// `establish` refused: `no_proposal_chosen`, `authentication_failed`, `timeout`, `unreachable` or `refused`.
    public var failure: String?
    public var reason: String?
    /// `secret`: the answer for the handset, hex (absent: no answer).
    public var reply: String?

    public init(ok: Bool) { self.ok = ok }

    public static func established(_ t: KDSATransfer) -> BackendResponse {
        var r = BackendResponse(ok: true)
        var buf = [UInt8](repeating: 0, count: KD.maxMessage)
        let n = buf.withUnsafeMutableBytes { b -> Int in
            var w = WireWriter(b)
            KDBody.saTransfer(t).encode(into: &w)
            return w.ok ? w.count : 0
        }
        r.transfer = Backend.hex(buf[0..<n])
        return r
    }

    public static func failed(_ f: NegotiationFailure) -> BackendResponse {
        var r = BackendResponse(ok: false)
        switch f {
        case .noProposalChosen: r.failure = "no_proposal_chosen"
        case .authenticationFailed: r.failure = "authentication_failed"
        case .timeout: r.failure = "timeout"
        case .unreachable: r.failure = "unreachable"
        case .refused(let why): r.failure = "refused"; r.reason = why
        }
        return r
    }

    /// What an `establish` answer means for the gateway. A garbled answer is a refusal, never a transfer.
    public var negotiation: Result<KDSATransfer, NegotiationFailure> {
        if ok {
            guard let hex = transfer, let bytes = Backend.bytes(hex),
                  let body = bytes.withUnsafeBytes({ KDBody.decode(.saTransfer, $0) }),
                  case .saTransfer(let t) = body else { return .failure(.refused("back end sent no valid sa-transfer")) }
            return .success(t)
        }
        switch failure {
        case "no_proposal_chosen": return .failure(.noProposalChosen)
        case "authentication_failed": return .failure(.authenticationFailed)
        case "timeout": return .failure(.timeout)
        case "unreachable": return .failure(.unreachable)
        default: return .failure(.refused(reason ?? "refused by the back end"))
        }
    }
}

public enum Backend {
    public static func hex<C: Collection<UInt8>>(_ bytes: C) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func bytes(_ hex: String) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
}
