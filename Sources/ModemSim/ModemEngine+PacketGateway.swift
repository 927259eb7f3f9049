// The module's side of the packet gateway: the handset's datagrams to the opposite party leave by the relay's
// public socket, and inbound ESP from it is delivered to the handset's module socket.

extension ModemEngine {
    func sendThroughPacketGateway(_ relay: PacketGateway, _ socket: SimSocket, _ bytes: [UInt8],
                                  to peer: UDPPeer) -> Bool {
        guard relay.sendUp(bytes, to: peer) else { return false }
        packetGatewaySocket = socket.id
        emit(NetworkEvent("udp-tx", [("id", .int(socket.id)), ("len", .int(bytes.count)), ("peer", .string(peer.description)),
                                     ("data", .string(Hex.encode(bytes))),
                                     ("via", .string("packet-gateway \(relay.publicSide)"))]))
        afterDatagram(socket.id)
        return true
    }

    /// Inbound ESP for the handset, appearing to come from `peer` (the server). It goes to the module socket that
    /// last sent to the opposite party, else to the only open one (the handset's single bearer socket, as a
    /// packet gateway maps the public endpoint to the subscriber's context). False when no socket can take it.
    func deliverFromPacketGateway(_ bytes: [UInt8], from peer: UDPPeer) -> Bool {
        let id = packetGatewaySocket.flatMap { sockets[$0] != nil ? $0 : nil }
            ?? (sockets.count == 1 ? sockets.keys.first : nil)
        guard let id else { return false }
        datagramArrived(socket: id, bytes: bytes, from: peer, via: "packet-gateway")
        return true
    }
}
