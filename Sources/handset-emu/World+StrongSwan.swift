import Foundation
import Gateway
import HandsetCore
import Logging
import ModemSim

/// `run --server strongswan`: the gateway's negotiator is the proxy charon (StrongSwanNegotiator), the opposite
/// party a stock strongSwan server in scripts/ike-lab, and the packet gateway owns the handset's public endpoint.
extension EmulatedWorld {
    /// Inside the server's remote_ts (10.201.0.0/16, scripts/ike-lab).
    static let strongSwanHandsetAddress = IPAddress(10, 201, 0, 2)
    /// The server's inner service address (UDP echo on port 7).
    static let strongSwanService = IPAddress(10, 200, 0, 1)
    /// Everything to the service is protected: the server's own connection covers all of 10.200.0.1 (any protocol),
    /// and a push may cover at most one protect rule.
    static let strongSwanRules = """
        rule = protect 10.200.0.1/32 any * * template=1
        """

    static func negotiator(lab: IKELabSession, relay: PacketGatewayConfig, registry: DeviceRegistry,
                           logger: Logger) throws -> StrongSwanNegotiator {
        guard let server = IPAddress(dottedQuad: lab["SRV_ADDR"]) else { throw WorldError("ike-lab: no SRV_ADDR") }
        // The proxy reaches the server only through the packet gateway's proxy side (docs/ike-proxy.md).
        var c = StrongSwanNegotiator.Configuration(viciSocket: lab["PROXY_VICI"], keySocket: lab["KEYS_SOCK"],
                                                   serverAddress: server, ikeRemoteAddress: "127.0.0.1",
                                                   serverID: lab.serverID)
        c.serverCAs = lab.serverConfig?.serverCAs ?? []
        c.virtualIP = lab.serverConfig?.virtualIP ?? false
        c.ikeRemotePort = UInt16(relay.proxySidePort)
        c.ikeLocalPort = UInt16(relay.ikeProxy.port)   // port_nat_t: IKE with the non-ESP marker from the first message
        c.serverESPPort = UInt16(relay.oppositeParty.port)
        c.rekeyTime = lab.proxyRekeyTime
        return StrongSwanNegotiator(configuration: c, registry: registry, logger: logger)
    }

    /// The daemon's negotiator keys for the lab: the same settings `negotiator(lab:relay:...)` builds in process.
    static func daemonNegotiator(lab: IKELabSession, relay: PacketGatewayConfig) -> String {
        var lines = [
            "negotiator = strongswan",
            "strongswan_vici = \(lab["PROXY_VICI"])",
            "strongswan_key_socket = \(lab["KEYS_SOCK"])",
            "strongswan_server = \(lab["SRV_ADDR"])",
            "strongswan_server_id = \(lab.serverID)",
            "strongswan_ike_remote = 127.0.0.1:\(relay.proxySidePort)",
            "strongswan_ike_local_port = \(relay.ikeProxy.port)",
            "strongswan_server_esp_port = \(relay.oppositeParty.port)",
            "strongswan_virtual_ip = \(lab.serverConfig?.virtualIP == true ? "yes" : "no")",
            "strongswan_rekey_time = \(lab.proxyRekeyTime)",
        ]
        if let ca = lab.serverConfig?.serverCAFile { lines.append("strongswan_server_ca = \(ca)") }
        return lines.joined(separator: "\n")
    }

    /// The device gets an IKE identity and credentials. The lab's own server: a fresh PSK, which the server learns
    /// over its VICI socket. A user's server (`--server-config`): a certificate issued by their handset CA (the key
    /// stays in memory and the registry, wrapped), or their PSK; their swanctl.conf already holds the server's side.
    func provisionForIKE(lab: IKELabSession, kek: String, msisdn: String) throws {
        let user = lab.serverConfig
        let identity = user?.handsetID ?? String(format: "%016llx@handset.invalid", deviceID)
        var psk = user?.handsetPSK ?? Array(KeyMaterial.random(32).map { String(format: "%02x", $0) }.joined().utf8)
        defer { for i in psk.indices { psk[i] = 0 } }
        var cert: (certificate: Data, privateKey: Data)?
        if let ca = user?.handsetCA {
            var issued = try IKECertificate.issue(identity: identity, caCertificate: ca.certificate, caKey: ca.key)
            defer { for i in issued.privateKey.indices { issued.privateKey[i] = 0 } }
            cert = (Data(issued.certificate), Data(issued.privateKey))
        }
        defer { if let n = cert?.privateKey.count { cert?.privateKey.resetBytes(in: 0..<n) } }
        _ = try Provisioning.create(registry: dir.appendingPathComponent("registry.sqlite").path, kek: kek,
                                    stateDir: dir.appendingPathComponent("state").path,
                                    msisdn: msisdn, deviceID: deviceID, innerAddress: handsetAddress,
                                    ike: (identity, Data(psk)), certificate: cert)
        if user == nil { try lab.serverLoadPSK(identity: identity, psk: psk) }
    }

    /// The in-process gateway's IKE engine (`--keylog`): it loads the device so the server may initiate; peer-made
    /// SAs and deletes go to the handset by SMS, as the daemon routes them.
    func routeIKE(_ ike: StrongSwanNegotiator) throws {
        ike.onPeerTransfer = { [weak self] device, transfer in
            guard let self else { return }
            queue.async { self.deliver(self.gateway.push(device: device, transfer: transfer)) }
        }
        ike.onPeerDelete = { [weak self] device, outbound, inbound in
            guard let self else { return }
            queue.async { self.deliver(self.gateway.deleteSA(device: device, outboundSPI: outbound, inboundSPI: inbound)) }
        }
        // The handset's sa-ack of a pushed SA ends the plugin's hold of a proxy-initiated rekey (hold_rekey).
        gateway.onPushAcknowledged = { [weak ike] device, spi in ike?.handsetInstalled(device: device, outboundSPI: spi) }
        try ike.start(devices: [deviceID])
    }
}
