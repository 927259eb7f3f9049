import Foundation
import Gateway
import ModemSim
import ProxyIKE

extension EmulatedWorld {
    /// The capture sees the packet gateway's public side (the proxy's IKE and the handset's ESP, real addresses);
    /// with `--keylog` (the in-process gateway), the negotiator's key records become esp_sa rows and the plugin's IKE_SA keys
    /// ikev2_decryption_table rows. Without `--keylog` no key leaves the negotiator.
    func tapPacketGateway(_ relay: PacketGatewayConfig, ike: StrongSwanNegotiator?, keylog: Bool) {
        let capture = self.capture
        let pub = (host: relay.publicEndpoint.host, port: relay.publicEndpoint.port)
        sim.packetGatewayTap = { toServer, bytes, server in
            capture.wire(toServer: toServer, bytes, public: pub, server: (server.host, server.port))
        }
        guard keylog, let ike else { return }
        let server = relay.oppositeParty.host
        ike.keylogTap = { r in
            let gcm = r.encryption != .chacha20poly1305
            capture.espSA(spi: r.spiOut, aesGCM: gcm, keySalt: r.keyOut, src: pub.host, dst: server)
            capture.espSA(spi: r.spiIn, aesGCM: gcm, keySalt: r.keyIn, src: server, dst: pub.host)
        }
        ike.ikeKeysTap = { r in
            capture.ikeSA(spiI: r.spiI, spiR: r.spiR, encryption: r.encryption, keySize: r.encryptionKeySize,
                          integrity: r.integrity, skEI: r.skEI, skER: r.skER, skAI: r.skAI, skAR: r.skAR)
        }
    }
}
