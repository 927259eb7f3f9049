import CHandsetShim
import HandsetCore

/// `handset-fw status CONFIG`: asks the running firmware for its counters (COUNTERS, Firmware+Status.swift) over
/// the app socket CONFIG names and prints them. Run it as the app's owner (`app_uid`): the firmware answers no one
/// else. The answer comes to a socket of our own, APP_SOCKET.status, removed afterwards.
func statusCommand(configPath: UnsafePointer<CChar>) -> Int32 {
    var plane = HandsetDataPlane()
    guard let config = loadConfig(configPath, spd: &plane.spd) else { return 1 }
    var server = config.appSocket
    var own = server
    var end = 0
    while own[end] != 0 { end += 1 }
    let suffix: StaticString = ".status"
    guard end + suffix.utf8CodeUnitCount <= Int(HS_APP_PATH_MAX) else { print("handset-fw: app_socket too long for APP_SOCKET.status"); return 1 }
    for i in 0..<suffix.utf8CodeUnitCount { own[end + i] = CChar(bitPattern: suffix.utf8Start[i]) }
    let fd = withUnsafeBytes(of: &own) { hs_app_socket_bind($0.baseAddress!.assumingMemoryBound(to: CChar.self), -1) }
    guard fd >= 0 else {
        withUnsafeBytes(of: &own) { p in
            LogLine("handset-fw: cannot bind ").append(cString: p.baseAddress!.assumingMemoryBound(to: CChar.self))
                .append(": ").append(errno: -fd).emit()
        }
        return 1
    }
    defer { withUnsafeBytes(of: &own) { hs_app_socket_close(fd, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) } }
    var ask = AppOp.counters
    let sent = withUnsafeBytes(of: &server) { s in
        hs_app_socket_send(fd, &ask, 1, s.baseAddress!.assumingMemoryBound(to: CChar.self))
    }
    guard sent == 0 else {
        withUnsafeBytes(of: &server) { p in
            LogLine("handset-fw: no firmware at ").append(cString: p.baseAddress!.assumingMemoryBound(to: CChar.self))
                .append(": ").append(errno: -sent).emit()
        }
        return 1
    }
    var answer = InlineArray<8193, UInt8>(repeating: 0)  // StatusText.capacity and the op byte
    for _ in 0..<150 {  // 3 s
        var uid: Int64 = -1
        var fromLength = 0
        var from = SocketPath(repeating: 0)
        let got = withUnsafeMutableBytes(of: &answer) { a in
            withUnsafeMutableBytes(of: &from) { f in
                Int(hs_app_socket_recv(fd, a.baseAddress!.assumingMemoryBound(to: UInt8.self), a.count, &uid,
                                       f.baseAddress!.assumingMemoryBound(to: CChar.self), f.count, &fromLength))
            }
        }
        if got > 1 && answer[0] == AppOp.countersIn {
            withUnsafeBytes(of: &answer) { _ = hs_write_all(1, $0.baseAddress! + 1, got - 1) }
            return 0
        }
        hs_sleep_ms(20)
    }
    print("handset-fw: no answer from the firmware within 3 s (is this user its app_uid?)")
    return 1
}
