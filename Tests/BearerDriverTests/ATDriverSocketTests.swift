// UDP through each dialect's socket commands. Command and URC shapes from the SIMCom SIM7500/SIM7600
// TCP/IP manual (CIPOPEN, CIPSEND, RECV FROM/+IPD, +IPCLOSE), the Quectel BG96 TCP/IP manual (QIOPEN
// "UDP SERVICE", QISEND, +QIURC "recv"/"closed", QIRD) and the u-blox SARA-R4 AT manual (USOCR, USOST @, USORF hex, +UUSOCL).
import Testing
@testable import BearerDriver

let peer = UDPEndpoint(address: 0x0A00_0001, port: 4500)
let datagram: [UInt8] = [0xDE, 0xAD, 0x0D, 0x0A]

@Suite struct ATDriverSocketTests {
    @Test func simcomOpenSendPushedReceiveAndNetworkClose() throws {
        var t = ScriptedTransport([
            step("AT+CIPOPEN=0,\"UDP\",,,5000", "\r\nOK\r\n\r\n+CIPOPEN: 0,0\r\n"),
            step("AT+CIPSEND=0,4,\"10.0.0.1\",4500", "\r\n>"),
            payloadStep(datagram, "\r\nOK\r\n\r\n+CIPSEND: 0,4,4\r\n"),
        ])
        t.timed = [(at: 5_000, bytes: bytes("\r\nRECV FROM:10.0.0.1:4500\r\n+IPD4\r\n") + datagram + bytes("\r\n\r\n+IPCLOSE: 0,1\r\n"))]
        let d = ATDriver(transport: t, dialect: .simcom)
        let s = try d.openUDP(localPort: 5000)
        #expect(s == 0)
        try datagram.withUnsafeBytes { try d.sendUDP(socket: s, to: peer, payload: $0) }
        guard case .socketData(let id, let from, let data)? = try d.nextEvent(timeoutMs: 10_000) else { Issue.record("no data"); return }
        #expect(id == 0)
        #expect(from == peer)
        #expect(Array(data) == datagram)
        guard case .socketClosed(let closed)? = try d.nextEvent(timeoutMs: 1_000) else { Issue.record("no close"); return }
        #expect(closed == 0)
        #expect(!d.isSocketOpen(0))
        var small = [UInt8](repeating: 0, count: 8)
        #expect(throws: ATError.unsupported) {
            try small.withUnsafeMutableBytes { _ = try d.receiveUDP(socket: 0, into: $0) }
        }
    }

    @Test func simcomOpenFailureLeavesTheSocketClosed() {
        let d = makeDriver([step("AT+CIPOPEN=0,\"UDP\",,,0", "\r\nOK\r\n\r\n+CIPOPEN: 0,4\r\n")], dialect: .simcom)
        #expect(throws: ATError.socketError(4)) { try d.openUDP() }
        #expect(!d.isSocketOpen(0))
    }

    @Test func quectelOpenSendRecvReadAndClosedURC() throws {
        var t = ScriptedTransport([
            step("AT+QIOPEN=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,5000,0", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"),
            step("AT+QISEND=0,4,\"10.0.0.1\",4500", "\r\n> "),
            payloadStep(datagram, "\r\nSEND OK\r\n"),
            ScriptStep(expect: bytes("AT+QIRD=0\r"),
                       reply: bytes("\r\n+QIRD: 4,\"10.0.0.1\",4500\r\n") + datagram + bytes("\r\n\r\nOK\r\n")),
        ])
        t.timed = [(at: 3_000, bytes: bytes("\r\n+QIURC: \"recv\",0\r\n")), (at: 9_000, bytes: bytes("\r\n+QIURC: \"closed\",0\r\n"))]
        let d = ATDriver(transport: t, dialect: .quectel)
        let s = try d.openUDP(localPort: 5000)
        try datagram.withUnsafeBytes { try d.sendUDP(socket: s, to: peer, payload: $0) }
        guard case .socketReadable(let id)? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no recv"); return }
        #expect(id == 0)
        var buf = [UInt8](repeating: 0, count: 1500)
        let (n, from) = try buf.withUnsafeMutableBytes { try d.receiveUDP(socket: 0, into: $0) }
        #expect(n == 4)
        #expect(Array(buf.prefix(4)) == datagram)
        #expect(from == peer)
        guard case .socketClosed(0)? = try d.nextEvent(timeoutMs: 10_000) else { Issue.record("no closed"); return }
        #expect(!d.isSocketOpen(0))
    }

    @Test func ubloxBinarySendAndHexReceive() throws {
        var t = ScriptedTransport([
            step("AT+USOCR=17,5000", "\r\n+USOCR: 3\r\n\r\nOK\r\n"),
            step("AT+USOST=3,\"10.0.0.1\",4500,4", "\r\n@"),
            payloadStep(datagram, "\r\n+USOST: 3,4\r\n\r\nOK\r\n"),
            step("AT+USORF=3,1024", "\r\n+USORF: 3,\"10.0.0.1\",4500,4,\"DEAD0D0A\"\r\n\r\nOK\r\n"),
            step("AT+USOCL=3", "\r\nOK\r\n"),
        ])
        t.timed = [(at: 2_000, bytes: bytes("\r\n+UUSORF: 3,4\r\n"))]
        let d = ATDriver(transport: t, dialect: .ublox)
        let s = try d.openUDP(localPort: 5000)
        #expect(s == 3)
        try datagram.withUnsafeBytes { try d.sendUDP(socket: s, to: peer, payload: $0) }
        #expect(d.engine.transport.paused == 50)
        guard case .socketReadable(3)? = try d.nextEvent(timeoutMs: 5_000) else { Issue.record("no +UUSORF"); return }
        var buf = [UInt8](repeating: 0, count: 2048)
        let (n, from) = try buf.withUnsafeMutableBytes { try d.receiveUDP(socket: 3, into: $0) }
        #expect(n == 4 && Array(buf.prefix(4)) == datagram && from == peer)
        try d.closeSocket(3)
        #expect(!d.isSocketOpen(3))
        #expect(d.engine.transport.finished)
    }

    @Test func genericProfileHasNoSockets() {
        let d = makeDriver([])
        #expect(throws: ATError.unsupported) { try d.openUDP() }
        #expect(d.engine.transport.written.isEmpty)
    }

    @Test func oversizeOrUnopenedSendIsRefusedBeforeTheWire() throws {
        let d = makeDriver([step("AT+USOCR=17", "\r\n+USOCR: 0\r\n\r\nOK\r\n")], dialect: .ublox)
        #expect(throws: ATError.noSuchSocket) {
            try datagram.withUnsafeBytes { try d.sendUDP(socket: 1, to: peer, payload: $0) }
        }
        _ = try d.openUDP()
        let before = d.engine.transport.written.count
        #expect(throws: ATError.invalidArgument) {
            try [UInt8](repeating: 0, count: 1025).withUnsafeBytes { try d.sendUDP(socket: 0, to: peer, payload: $0) }
        }
        #expect(d.engine.transport.written.count == before)
    }
}
