import HandsetCore
import Testing
@testable import handset_fw

/// The TUN keys (docs/firmware.md, "TUN interface"): tun, tun_address, tun_mtu.
@Suite struct FirmwareConfigTUNTests {
    static let base = "state_dir = /var/lib/handset\nserial = /dev/ttyAMA0\ngateway_number = +15550100000\n"

    func parse(_ text: String, spd: inout SPD<8>) -> Result<FirmwareConfig, ConfigError> {
        var t = text
        var result: Result<FirmwareConfig, ConfigError> = .failure(ConfigError(line: -1, reason: "not run"))
        t.withUTF8 { b in
            do throws(ConfigError) { result = .success(try FirmwareConfig.parse(UnsafeRawBufferPointer(b), spd: &spd)) }
            catch { result = .failure(error) }
        }
        return result
    }

    func name(_ c: FirmwareConfig) -> String {
        var n = c.tun.name
        return withUnsafeBytes(of: &n) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    @Test func withoutTunThereIsNoInterface() throws {
        var spd = SPD<8>()
        let c = try parse(Self.base, spd: &spd).get()
        #expect(!c.tun.enabled && c.tun.prefix == -1 && c.tun.mtu == 1400)
    }

    @Test func nameOnlyLeavesAddressAndLinkToTheOperator() throws {
        var spd = SPD<8>()
        let c = try parse(Self.base + "tun = hs0\n", spd: &spd).get()
        #expect(c.tun.enabled && name(c) == "hs0")
        #expect(c.tun.prefix == -1)
    }

    @Test func addressMustBeTheSAsInnerAddress() throws {
        var spd = SPD<8>()
        // local_address may come after tun_address: the check runs on the whole file.
        let c = try parse(Self.base + "tun = hs0\ntun_address = 10.1.2.3/24\ntun_mtu = 1000\nlocal_address = 10.1.2.3\n", spd: &spd).get()
        #expect(c.tun.address == IPAddress(10, 1, 2, 3) && c.tun.prefix == 24 && c.tun.mtu == 1000)
        #expect(name(c) == "hs0")
    }

    @Test(arguments: [
        ("tun = hs0\ntun_address = 10.0.0.3/24\n", 0, "tun_address must be local_address"),
        ("tun_address = 10.0.0.2/24\n", 0, "tun_address needs tun"),
        ("tun = abcdefghijklmnop\n", 4, "tun: an interface name of 1...15 bytes"),
        ("tun = hs0\ntun_address = 10.0.0.2\n", 5, "tun_address: ADDRESS/PREFIX"),
        ("tun = hs0\ntun_address = 10.0.0.2/33\n", 5, "tun_address: ADDRESS/PREFIX"),
        ("tun_mtu = 575\n", 4, "tun_mtu: 576...9000"),
        ("tun_mtu = 9001\n", 4, "tun_mtu: 576...9000"),
        ("tun_device = hs0\n", 4, "unknown key"),
    ])
    func refusesBadValues(_ bad: String, _ line: Int, _ reason: String) {
        var spd = SPD<8>()
        let r = parse(Self.base + bad + "rule = protect 192.0.2.1/32 udp * * template=1\n", spd: &spd)
        guard case .failure(let e) = r else { Issue.record("accepted: \(bad)"); return }
        #expect(e.line == line && String(describing: e.reason) == reason)
        // Refused before the rule line was reached, or (whole-file checks) refused outright: no config came back.
        if line > 0 { #expect(spd.count == 0) }
    }
}
