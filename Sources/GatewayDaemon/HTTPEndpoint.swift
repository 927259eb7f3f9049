import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// `GET /metrics` (Prometheus text), `GET /health` (the process answers) and `GET /ready` (SMPP bound and the
/// registry open: 200, else 503). Anything else is 404; other methods 405. No keep-alive, no bodies taken.
public final class HTTPEndpoint: Service, @unchecked Sendable {
    let host: String
    let port: Int
    let metrics: GatewayMetrics
    let ready: @Sendable () -> Bool
    /// `/admin/...` (admin = on; AdminRoutes.swift): method and URI in, status, content type and body out.
    let admin: AdminRoutes.Handler?
    let log: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel?

    public init(host: String, port: Int, metrics: GatewayMetrics, logger: Logger, ready: @escaping @Sendable () -> Bool,
                admin: AdminRoutes.Handler? = nil) {
        self.admin = admin
        self.host = host
        self.port = port
        self.metrics = metrics
        self.log = logger
        self.ready = ready
    }

    /// Binds now (before the group runs) so a taken port fails the start; returns the port bound.
    public func bind() throws -> Int {
        let metrics = metrics, ready = ready, admin = admin
        let c = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    ch.pipeline.addHandler(Responder(metrics: metrics, ready: ready, admin: admin))
                }
            }
            .bind(host: host, port: port).wait()
        channel = c
        return c.localAddress?.port ?? port
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try? await channel?.close().get()
        try? await group.shutdownGracefully()
    }

    final class Responder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let metrics: GatewayMetrics
        let ready: @Sendable () -> Bool
        let admin: AdminRoutes.Handler?
        var head: HTTPRequestHead?

        init(metrics: GatewayMetrics, ready: @escaping @Sendable () -> Bool, admin: AdminRoutes.Handler?) {
            self.admin = admin
            self.metrics = metrics
            self.ready = ready
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let h = head else { return }
                let (status, type, body) = answer(h)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: type)
                headers.add(name: "Content-Length", value: "\(body.utf8.count)")
                headers.add(name: "Connection", value: "close")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))),
                              promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }

        func answer(_ h: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
            if let admin, h.uri.hasPrefix("/admin/") { return admin(h.method, h.uri) }
            guard h.method == .GET || h.method == .HEAD else { return (.methodNotAllowed, "text/plain", "GET only\n") }
            switch h.uri.split(separator: "?").first.map(String.init) ?? "" {
            case "/metrics": return (.ok, "text/plain; version=0.0.4", metrics.exposition())
            case "/health": return (.ok, "text/plain", "ok\n")
            case "/ready": return ready() ? (.ok, "text/plain", "ready\n") : (.serviceUnavailable, "text/plain", "not ready\n")
            default: return (.notFound, "text/plain", "not found\n")
            }
        }
    }
}
