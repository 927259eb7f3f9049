/// Message bodies (the plaintext inside the AEAD envelope). Layouts: docs/key-delegation.md §4.

public struct KDLogin: Equatable, Sendable {
    public var hello: UInt64  // random, echoed by the gateway
    public var firmware: UInt16
    public var capabilities: UInt8  // bit 0: ChaCha20-Poly1305, bit 1: ESN, bit 2: implicit IV
    public init(hello: UInt64, firmware: UInt16, capabilities: UInt8) {
        self.hello = hello; self.firmware = firmware; self.capabilities = capabilities
    }
}

public struct KDLoginAck: Equatable, Sendable {
    public var hello: UInt64
    public var newEpoch: UInt16
    public var newKey: KeyBytes
    public var gatewayTime: UInt32
    public init(hello: UInt64, newEpoch: UInt16, newKey: KeyBytes, gatewayTime: UInt32) {
        self.hello = hello; self.newEpoch = newEpoch; self.newKey = newKey; self.gatewayTime = gatewayTime
    }
}

public struct KDKeyRequest: Equatable, Sendable {
    public var requestID: UInt16
    public var template: UInt16
    public var selector: TrafficSelector  // local = the handset's address
    public init(requestID: UInt16, template: UInt16, selector: TrafficSelector) {
        self.requestID = requestID; self.template = template; self.selector = selector
    }
}

/// One SA pair as the gateway hands it over. Keys travel in 32-byte fields: AES-256-GCM and ChaCha20-Poly1305 fill
/// them, AES-128-GCM (`keyLength` 16) uses the first 16 bytes and leaves the rest zero.
public struct KDSATransfer: Equatable, Sendable {
    public var requestID: UInt16  // 0 = pushed because the peer started
    public var algorithm: ESPAlgorithm
    /// 32, or 16 for AES-128-GCM.
    public var keyLength: Int
    public var tunnel: Bool
    public var esn: Bool
    public var implicitIV: Bool
    public var outboundSPI: UInt32  // handset -> peer
    public var outboundKey: KeyBytes
    public var outboundSalt: UInt32
    public var inboundSPI: UInt32  // peer -> handset
    public var inboundKey: KeyBytes
    public var inboundSalt: UInt32
    public var peer: IPAddress
    public var peerPort: UInt16
    public var prefix: UInt8
    public var proto: UInt8
    public var localPort: UInt16  // 0 = any
    public var remotePort: UInt16  // 0 = any
    public var softSeconds: UInt32
    public var hardSeconds: UInt32
    /// The pair's remote selector address when it is not the peer (tunnel mode to a server whose services sit
    /// behind its public address); nil: the peer itself.
    public var remote: IPAddress?
    /// The handset's inner address, when the opposite party chose it (a virtual IP from an IKE server's pool):
    /// the handset sends from it from now on (docs/key-delegation.md §4, flag bit 7). IPv4 only.
    public var handset: IPAddress?

    public init(requestID: UInt16, algorithm: ESPAlgorithm = .aesGCM, keyLength: Int = 32, tunnel: Bool = false, esn: Bool = false,
                implicitIV: Bool = false, outboundSPI: UInt32, outboundKey: KeyBytes, outboundSalt: UInt32,
                inboundSPI: UInt32, inboundKey: KeyBytes, inboundSalt: UInt32, peer: IPAddress, peerPort: UInt16 = 4500,
                prefix: UInt8, proto: UInt8, localPort: UInt16, remotePort: UInt16, softSeconds: UInt32, hardSeconds: UInt32,
                remote: IPAddress? = nil, handset: IPAddress? = nil) {
        self.requestID = requestID; self.algorithm = algorithm; self.keyLength = keyLength
        self.tunnel = tunnel; self.esn = esn
        self.implicitIV = implicitIV; self.outboundSPI = outboundSPI; self.outboundKey = outboundKey
        self.outboundSalt = outboundSalt; self.inboundSPI = inboundSPI; self.inboundKey = inboundKey
        self.inboundSalt = inboundSalt; self.peer = peer; self.peerPort = peerPort; self.prefix = prefix
        self.proto = proto; self.localPort = localPort; self.remotePort = remotePort
        self.softSeconds = softSeconds; self.hardSeconds = hardSeconds; self.remote = remote
        self.handset = handset
    }

    var flags: UInt8 {
        (algorithm == .chacha20Poly1305 ? 1 : keyLength == 16 ? 2 : 0) | (tunnel ? 4 : 0) | (esn ? 8 : 0) | (peer.isV6 ? 16 : 0)
            | (implicitIV ? 32 : 0) | (remote != nil ? 64 : 0) | (handset != nil ? 128 : 0)
    }
}

public struct KDSAAck: Equatable, Sendable {
    public var requestID: UInt16
    public var outboundSPI: UInt32
    public var status: KDStatus
    public init(requestID: UInt16, outboundSPI: UInt32, status: KDStatus) {
        self.requestID = requestID; self.outboundSPI = outboundSPI; self.status = status
    }
}

public struct KDSADelete: Equatable, Sendable {
    public var outboundSPI: UInt32  // the handset's outbound SA (the peer's inbound)
    public var inboundSPI: UInt32
    public init(outboundSPI: UInt32, inboundSPI: UInt32) { self.outboundSPI = outboundSPI; self.inboundSPI = inboundSPI }
}

public struct KDError: Equatable, Sendable {
    public var refType: UInt8
    public var refCounter: UInt64
    public var status: KDStatus
    /// The sender's last accepted counter from the other side, so a peer that fell behind can resynchronise.
    public var lastAccepted: UInt64
    public init(refType: UInt8, refCounter: UInt64, status: KDStatus, lastAccepted: UInt64) {
        self.refType = refType; self.refCounter = refCounter; self.status = status; self.lastAccepted = lastAccepted
    }
}

/// A decoded body. `data` views point into the buffer that was decoded and live as long as it does.
public enum KDBody {
    case login(KDLogin)
    case loginAck(KDLoginAck)
    case keyConfirm(hello: UInt64)
    case confirmAck(epoch: UInt16)
    case keyRequest(KDKeyRequest)
    case saTransfer(KDSATransfer)
    case saAck(KDSAAck)
    case saDelete(KDSADelete)
    case secretData(channel: UInt16, data: UnsafeRawBufferPointer)
    case fetchRequest(requestID: UInt16, url: UnsafeRawBufferPointer)
    case fetchResponse(requestID: UInt16, httpStatus: UInt16, truncated: Bool, body: UnsafeRawBufferPointer)
    case error(KDError)

    public var type: KDMessageType {
        switch self {
        case .login: return .login
        case .loginAck: return .loginAck
        case .keyConfirm: return .keyConfirm
        case .confirmAck: return .confirmAck
        case .keyRequest: return .keyRequest
        case .saTransfer: return .saTransfer
        case .saAck: return .saAck
        case .saDelete: return .saDelete
        case .secretData: return .secretData
        case .fetchRequest: return .fetchRequest
        case .fetchResponse: return .fetchResponse
        case .error: return .error
        }
    }
}

extension KDBody {
    /// Overwrites the keys a decoded login-ack or sa-transfer holds, once they have been taken over.
    mutating func wipeKeys() {
        switch self {
        case .loginAck(var m):
            m.newKey.wipe()
            self = .loginAck(m)
        case .saTransfer(var t):
            t.outboundKey.wipe()
            t.inboundKey.wipe()
            self = .saTransfer(t)
        default:
            break
        }
    }
}
