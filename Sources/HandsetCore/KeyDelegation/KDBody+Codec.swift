extension KDBody {
    public func encode(into w: inout WireWriter) {
        switch self {
        case .login(let m): w.u64(m.hello); w.u16(m.firmware); w.u8(m.capabilities)
        case .loginAck(let m):
            w.u64(m.hello); w.u16(m.newEpoch); m.newKey.withBytes { w.bytes($0) }; w.u32(m.gatewayTime)
        case .keyConfirm(let hello): w.u64(hello)
        case .confirmAck(let epoch): w.u16(epoch)
        case .keyRequest(let m):
            w.u16(m.requestID); w.u16(m.template); w.u8(m.selector.remote.isV6 ? 16 : 0)
            w.address(m.selector.remote); w.u8(m.selector.proto); w.u16(m.selector.localPort)
            w.u16(m.selector.remotePort); w.address(m.selector.local)
        case .saTransfer(let m):
            w.u16(m.requestID); w.u8(m.flags)
            w.u32(m.outboundSPI); m.outboundKey.withBytes { w.bytes($0) }; w.u32(m.outboundSalt)
            w.u32(m.inboundSPI); m.inboundKey.withBytes { w.bytes($0) }; w.u32(m.inboundSalt)
            w.address(m.peer); w.u16(m.peerPort); w.u8(m.prefix); w.u8(m.proto)
            w.u16(m.localPort); w.u16(m.remotePort); w.u32(m.softSeconds); w.u32(m.hardSeconds)
            if let remote = m.remote { w.address(remote) }
            if let handset = m.handset { w.address(handset) }
        case .saAck(let m): w.u16(m.requestID); w.u32(m.outboundSPI); w.u8(m.status.rawValue)
        case .saDelete(let m): w.u32(m.outboundSPI); w.u32(m.inboundSPI)
        case .secretData(let channel, let data): w.u16(channel); w.bytes(data)
        case .fetchRequest(let id, let url): w.u16(id); w.bytes(url)
        case .fetchResponse(let id, let status, let truncated, let body):
            w.u16(id); w.u16(status); w.u8(truncated ? 1 : 0); w.bytes(body)
        case .error(let m): w.u8(m.refType); w.u40(m.refCounter); w.u8(m.status.rawValue); w.u40(m.lastAccepted)
        }
    }

    /// Decodes a body of the given type. Every field is bounds-checked; trailing bytes are refused for
    /// fixed-size bodies so that a layout mismatch cannot pass silently.
    public static func decode(_ type: KDMessageType, _ b: UnsafeRawBufferPointer) -> KDBody? {
        var r = WireReader(b)
        let body: KDBody
        var fixed = true
        switch type {
        case .login: body = .login(KDLogin(hello: r.u64(), firmware: r.u16(), capabilities: r.u8()))
        case .loginAck:
            let hello = r.u64(), epoch = r.u16(), key = KeyBytes(r.bytes(32))
            body = .loginAck(KDLoginAck(hello: hello, newEpoch: epoch, newKey: key, gatewayTime: r.u32()))
        case .keyConfirm: body = .keyConfirm(hello: r.u64())
        case .confirmAck: body = .confirmAck(epoch: r.u16())
        case .keyRequest:
            let id = r.u16(), template = r.u16(), flags = r.u8()
            guard flags & ~16 == 0 else { return nil }
            let v6 = flags & 16 != 0
            let remote = r.address(v6: v6), proto = r.u8(), lport = r.u16(), rport = r.u16(), local = r.address(v6: v6)
            body = .keyRequest(KDKeyRequest(requestID: id, template: template, selector:
                TrafficSelector(local: local, remote: remote, proto: proto, localPort: lport, remotePort: rport)))
        case .saTransfer:
            guard let m = decodeSATransfer(&r) else { return nil }
            body = .saTransfer(m)
        case .saAck:
            let id = r.u16(), spi = r.u32()
            guard let status = KDStatus(rawValue: r.u8()) else { return nil }
            body = .saAck(KDSAAck(requestID: id, outboundSPI: spi, status: status))
        case .saDelete: body = .saDelete(KDSADelete(outboundSPI: r.u32(), inboundSPI: r.u32()))
        case .secretData:
            fixed = false
            body = .secretData(channel: r.u16(), data: r.rest())
        case .fetchRequest:
            fixed = false
            body = .fetchRequest(requestID: r.u16(), url: r.rest())
        case .fetchResponse:
            fixed = false
            let id = r.u16(), status = r.u16(), truncated = r.u8()
            guard truncated <= 1 else { return nil }
            body = .fetchResponse(requestID: id, httpStatus: status, truncated: truncated == 1, body: r.rest())
        case .error:
            let ref = r.u8(), refCounter = r.u40()
            guard let status = KDStatus(rawValue: r.u8()) else { return nil }
            body = .error(KDError(refType: ref, refCounter: refCounter, status: status, lastAccepted: r.u40()))
        }
        guard r.ok, !fixed || r.remaining == 0 else { return nil }
        return body
    }

    private static func decodeSATransfer(_ r: inout WireReader) -> KDSATransfer? {
        let id = r.u16(), flags = r.u8()
        // Bits 0-1: 0 AES-256-GCM, 1 ChaCha20-Poly1305, 2 AES-128-GCM (keys in the first 16 bytes, the rest zero).
        guard flags & 3 != 3 else { return nil }
        let alg: ESPAlgorithm = flags & 3 == 1 ? .chacha20Poly1305 : .aesGCM
        let keyLength = flags & 3 == 2 ? 16 : 32
        let outSPI = r.u32(), outKey = KeyBytes(r.bytes(32)), outSalt = r.u32()
        let inSPI = r.u32(), inKey = KeyBytes(r.bytes(32)), inSalt = r.u32()
        guard keyLength == 32 || (outKey.upperHalfIsZero && inKey.upperHalfIsZero) else { return nil }
        let v6 = flags & 16 != 0
        let peer = r.address(v6: v6), peerPort = r.u16(), prefix = r.u8(), proto = r.u8()
        let lport = r.u16(), rport = r.u16(), soft = r.u32(), hard = r.u32()
        let remote: IPAddress? = flags & 64 != 0 ? r.address(v6: v6) : nil
        let handset: IPAddress? = flags & 128 != 0 ? r.address(v6: false) : nil
        if let handset, !handset.isUsableInnerAddress { return nil }
        guard Int(prefix) <= (v6 ? 128 : 32), outSPI > 255, inSPI > 255, soft <= hard || hard == 0 else { return nil }
        return KDSATransfer(requestID: id, algorithm: alg, keyLength: keyLength, tunnel: flags & 4 != 0, esn: flags & 8 != 0,
                            implicitIV: flags & 32 != 0, outboundSPI: outSPI, outboundKey: outKey, outboundSalt: outSalt,
                            inboundSPI: inSPI, inboundKey: inKey, inboundSalt: inSalt, peer: peer, peerPort: peerPort,
                            prefix: prefix, proto: proto, localPort: lport, remotePort: rport,
                            softSeconds: soft, hardSeconds: hard, remote: remote, handset: handset)
    }
}
