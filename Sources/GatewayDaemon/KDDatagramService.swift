import Gateway
import HandsetCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The UDP carriage (docs/key-delegation.md §1) on swift-nio: `non-ESP marker || message` datagrams, each handed
/// to the Gateway on its device's queue (the same queues as SMS, so one device's messages never run side by
/// side) and answered to the sender the same way. Answers of SMS-only types go to `sendSMS`.
public final class KDDatagramService: Service, @unchecked Sendable {
    let gateway: Gateway
    let serializer: DeviceSerializer
    let sendSMS: @Sendable ([Downlink]) -> Void
    let metrics: GatewayMetrics
    let log: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel?

    public init(gateway: Gateway, serializer: DeviceSerializer, metrics: GatewayMetrics, logger: Logger,
                sendSMS: @escaping @Sendable ([Downlink]) -> Void) {
        self.gateway = gateway
        self.serializer = serializer
        self.metrics = metrics
        self.sendSMS = sendSMS
        log = logger
    }

    /// Binds now, so a taken port fails the start; returns the port bound.
    public func bind(host: String, port: Int) throws -> Int {
        let handler = Receiver(service: self)
        let c = try DatagramBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(handler) }
            .bind(host: host, port: port).wait()
        channel = c
        return c.localAddress?.port ?? port
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try? await channel?.close().get()
        try? await group.shutdownGracefully()
    }

    /// On the event loop: check the marker, queue the message on its device.
    func take(_ datagram: [UInt8], from: SocketAddress, channel: Channel) {
        let ok = datagram.withUnsafeBytes { KD.isKeyDelegationDatagram($0) }
        metrics.countDatagram(ok ? "received" : "malformed")
        guard ok else { return }
        let message = Array(datagram[KD.nonESPMarkerLength...])
        let device = message.withUnsafeBytes { KDHeader.parse($0, direction: .up)?.deviceID } ?? 0
        serializer.submit(device: device) { [self] in
            let answers = gateway.handleUplink(message, via: .udp)
            let bySMS = answers.filter { $0.carriage == .sms }
            if !bySMS.isEmpty { sendSMS(bySMS) }
            for d in answers where d.carriage == .udp {
                var buf = channel.allocator.buffer(capacity: KD.nonESPMarkerLength + d.bytes.count)
                buf.writeRepeatingByte(0, count: KD.nonESPMarkerLength)
                buf.writeBytes(d.bytes)
                // A channel closed meanwhile (shutdown) fails the write; the handset retries.
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: from, data: buf), promise: nil)
                metrics.countDatagram("answered")
            }
            metrics.observe(gateway.counters)
        }
    }

    final class Receiver: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let service: KDDatagramService
        init(service: KDDatagramService) { self.service = service }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            service.take(Array(envelope.data.readableBytesView), from: envelope.remoteAddress, channel: context.channel)
        }
    }
}
