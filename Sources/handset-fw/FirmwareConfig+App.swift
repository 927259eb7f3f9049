import CHandsetShim

/// The app interface's socket (docs/firmware.md, App interface):
///   app_socket = PATH    the AF_UNIX datagram socket; default STATE_DIR/app.sock
///   app_uid    = UID     the only uid whose datagrams are accepted; default the firmware's own
///   app_group  = GID     gives the socket file to this group, mode 0660; default none, mode 0600
extension FirmwareConfig {
    mutating func applyApp(_ k: UnsafeRawBufferPointer, _ v: Tokens, line: Int) throws(ConfigError) -> Bool {
        if bytesEqual(k, "app_socket") {
            guard v[0].count <= Int(HS_APP_PATH_MAX) else { throw ConfigError(line: line, reason: "app_socket: 107 bytes at most") }
            guard v[0][0] == 0x2F else { throw ConfigError(line: line, reason: "app_socket must be an absolute path") }
            appSocket = SocketPath(repeating: 0)
            for i in 0..<v[0].count { appSocket[i] = CChar(bitPattern: v[0][i]) }
        } else if bytesEqual(k, "app_uid") {
            guard let u = parseUInt(v[0], max: UInt64(UInt32.max - 1)) else { throw ConfigError(line: line, reason: "bad app_uid") }
            appUID = UInt32(u)
        } else if bytesEqual(k, "app_group") {
            guard let g = parseUInt(v[0], max: UInt64(UInt32.max - 1)) else { throw ConfigError(line: line, reason: "app_group: a numeric gid") }
            appGroup = Int64(g)
        } else if bytesEqual(k, "app_port") {
            throw ConfigError(line: line, reason: "app_port is gone: the app interface is the AF_UNIX socket app_socket")
        } else {
            return false
        }
        return true
    }

    /// Without app_socket: STATE_DIR/app.sock.
    mutating func checkApp() throws(ConfigError) {
        guard appSocket[0] == 0 else { return }
        let suffix: StaticString = "/app.sock"
        var n = 0
        while stateDir[n] != 0 { n += 1 }
        guard n + suffix.utf8CodeUnitCount <= Int(HS_APP_PATH_MAX) else {
            throw ConfigError(line: 0, reason: "state_dir is too long for the default app_socket: set app_socket")
        }
        for i in 0..<n { appSocket[i] = stateDir[i] }
        for i in 0..<suffix.utf8CodeUnitCount { appSocket[n + i] = CChar(bitPattern: suffix.utf8Start[i]) }
    }
}
