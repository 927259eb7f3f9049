import ArgumentParser
import ModemSim

/// The packet gateway in front of the handset's public endpoint, for `modem` and `run` (docs/ike-proxy.md).
struct PacketGatewayOptions: ParsableArguments {
    @Option(name: .customLong("packet-gateway"),
            help: ArgumentHelp("The handset's public UDP endpoint the packet gateway binds (10.99.0.2:4500 in the lab).", valueName: "PUBLIC_ADDR:PORT"))
    var publicEndpoint: String?

    @Option(name: .customLong("ike-proxy"),
            help: ArgumentHelp("The proxy charon's NAT-T endpoint (its port_nat_t): inbound IKE and keepalives go there.", valueName: "ADDR:PORT"))
    var ikeProxy: String?

    @Option(name: .customLong("opposite-party"),
            help: ArgumentHelp("The server's public endpoint: the handset's ESP to it and the proxy's IKE leave by the public endpoint.", valueName: "ADDR:PORT"))
    var oppositeParty: String?

    @Option(name: .customLong("proxy-side-port"),
            help: ArgumentHelp("The packet gateway's port on 127.0.0.1 facing the proxy (its connections' remote_port; 0 picks one).", valueName: "PORT"))
    var proxySidePort: Int = 0

    /// nil when no packet gateway is asked for; a ValidationError naming the bad option otherwise.
    func config() throws -> PacketGatewayConfig? {
        let given = [publicEndpoint, ikeProxy, oppositeParty].compactMap { $0 }
        if given.isEmpty { return nil }
        guard let publicEndpoint, let ikeProxy, let oppositeParty else {
            throw ValidationError("--packet-gateway, --ike-proxy and --opposite-party go together")
        }
        guard (0...65535).contains(proxySidePort) else { throw ValidationError("--proxy-side-port must be 0...65535") }
        func parse(_ text: String, _ option: String) throws -> UDPPeer {
            do { return try PacketGatewayConfig.endpoint(text) } catch { throw ValidationError("\(option): \(error)") }
        }
        return PacketGatewayConfig(publicEndpoint: try parse(publicEndpoint, "--packet-gateway"),
                                   ikeProxy: try parse(ikeProxy, "--ike-proxy"),
                                   oppositeParty: try parse(oppositeParty, "--opposite-party"),
                                   proxySidePort: proxySidePort)
    }
}
