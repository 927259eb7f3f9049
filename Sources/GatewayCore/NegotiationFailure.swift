import HandsetCore

/// Why the opposite party gave the handset no SA. Each kind is counted and answers the key-request with its own
/// KD status (docs/key-delegation.md §4).
public enum NegotiationFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer accepted none of our IKE or ESP proposals (IKEv2 NO_PROPOSAL_CHOSEN).
    case noProposalChosen
    /// Either side refused the other's authentication (AUTHENTICATION_FAILED), or we hold no credential.
    case authenticationFailed
    /// No answer within the bound.
    case timeout
    /// The peer's address cannot be reached (no route, refused).
    case unreachable
    /// Refused by policy on our side or the peer's (an address another device holds, an algorithm sa-transfer
    /// cannot carry, an IKE engine that is down).
    case refused(String)

    public var status: KDStatus {
        switch self {
        case .noProposalChosen: .noProposalChosen
        case .authenticationFailed: .authenticationFailed
        case .timeout: .peerTimeout
        case .unreachable: .peerUnreachable
        case .refused: .denied
        }
    }

    public var description: String {
        switch self {
        case .noProposalChosen: "no proposal chosen"
        case .authenticationFailed: "authentication failed"
        case .timeout: "timeout"
        case .unreachable: "unreachable"
        case .refused(let why): "refused: \(why)"
        }
    }
}

/// The opposite party as the gateway sees it: it takes one half of each fresh SA pair.
public protocol PeerNegotiator: AnyObject {
    /// Negotiates a fresh pair for `selector` (the handset's view) and returns the handset's half, or why not.
    /// `reused` says whether the gateway already had a relationship with that peer for this device.
    func establish(device: UInt64, handset: IPAddress, selector: TrafficSelector, template: UInt16,
                   reused: Bool) -> Result<KDSATransfer, NegotiationFailure>
    /// The handset logged in afresh: whatever SAs the peer holds for it are dead.
    func forget(device: UInt64)
    /// The gateway refused `transfer`, which this negotiator made (its address could not be bound): the peer's SAs
    /// for the device are ended as by `forget`, and this pair, which the handset never had, is not reported as a
    /// delete afterwards.
    func withdraw(device: UInt64, transfer: KDSATransfer)
    /// True when the opposite party chooses the handset's inner address (an IKE server's virtual IP): each transfer
    /// then names it (`KDSATransfer.handset`), and the gateway binds it to the device before sending the transfer.
    var assignsHandsetAddress: Bool { get }
}

extension PeerNegotiator {
    public var assignsHandsetAddress: Bool { false }
    public func withdraw(device: UInt64, transfer: KDSATransfer) { forget(device: device) }
}
