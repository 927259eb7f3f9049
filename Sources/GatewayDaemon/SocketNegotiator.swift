import Gateway
import HandsetCore
import Logging

/// `negotiator = socket`: the opposite party's negotiator is another process reached over the back-end socket
/// (Gateway/BackendProtocol.swift): the emulator's opposite party, or an operator's own IKE front end.
/// No answer in time is a timeout, no listener is unreachable, a garbled answer a refusal; each is counted by the
/// Gateway as any other negotiation failure.
final class SocketNegotiator: PeerNegotiator, @unchecked Sendable {
    let client: BackendSocketClient
    let log: Logger

    init(client: BackendSocketClient, logger: Logger) {
        self.client = client
        log = logger
    }

    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure> {
        let request = BackendRequest.establish(device: device, handset: handset, selector: selector, template: template,
                                               reused: reused)
        switch client.call(request) {
        case .success(let answer): return answer.negotiation
        case .failure(.timeout): return .failure(.timeout)
        case .failure(.unreachable), .failure(.pathTooLong):
            log.warning("negotiator socket unreachable", metadata: ["socket": "\(client.path)"])
            return .failure(.unreachable)
        case .failure(.malformed): return .failure(.refused("malformed answer from the negotiator socket"))
        }
    }

    func forget(device: UInt64) {
        if case .failure(let e) = client.call(BackendRequest(op: .forget, device: device)) {
            log.notice("negotiator socket: forget not delivered", metadata: ["device": "\(device)", "error": "\(e)"])
        }
    }
}
