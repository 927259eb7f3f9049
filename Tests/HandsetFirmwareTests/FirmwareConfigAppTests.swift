import HandsetCore
import Testing
@testable import handset_fw

/// app_socket, app_uid and app_group (docs/firmware.md, App interface).
@Suite struct FirmwareConfigAppTests {
    func text(_ p: SocketPath) -> String {
        var bytes: [UInt8] = []
        for i in 0..<p.count where p[i] != 0 { bytes.append(UInt8(bitPattern: p[i])) }
        return String(decoding: bytes, as: UTF8.self)
    }

    func reason(_ r: Result<FirmwareConfig, ConfigError>) -> String? {
        guard case .failure(let e) = r else { return nil }
        return "\(e.reason)"
    }

    @Test func defaultsAreTheStateDirAndTheFirmwaresOwnUser() throws {
        let c = try parseConfig(minimalConfig).get()
        #expect(text(c.appSocket) == "/var/lib/handset/app.sock")
        #expect(c.appUID == nil && c.appGroup == -1)
    }

    @Test func configuredSocketOwnerAndGroup() throws {
        let c = try parseConfig(minimalConfig + "app_socket = /run/handset/app.sock\napp_uid = 1000\napp_group = 1001\n").get()
        #expect(text(c.appSocket) == "/run/handset/app.sock")
        #expect(c.appUID == 1000 && c.appGroup == 1001)
    }

    @Test func badValuesAreRefused() {
        #expect(reason(parseConfig(minimalConfig + "app_port = 7001\n"))?.contains("app_port is gone") == true)
        #expect(reason(parseConfig(minimalConfig + "app_socket = run/app.sock\n")) == "app_socket must be an absolute path")
        #expect(reason(parseConfig(minimalConfig + "app_socket = /" + String(repeating: "a", count: 107) + "\n")) == "app_socket: 107 bytes at most")
        #expect(reason(parseConfig(minimalConfig + "app_uid = nobody\n")) == "bad app_uid")
        #expect(reason(parseConfig(minimalConfig + "app_group = dialout\n")) == "app_group: a numeric gid")
        let longDir = "state_dir = /" + String(repeating: "d", count: 100) + "\nserial = /dev/ttyAMA0\ngateway_number = +1555\n"
        #expect(reason(parseConfig(longDir))?.contains("set app_socket") == true)
    }
}
