import HandsetCore
@testable import handset_fw

/// The smallest config the parser takes, for a test to add its lines to.
let minimalConfig = "state_dir = /var/lib/handset\nserial = /dev/ttyAMA0\ngateway_number = +15550100000\n"

/// `text` parsed as a config file, as `handset-fw run` parses it.
func parseConfig(_ text: String) -> Result<FirmwareConfig, ConfigError> {
    var t = text
    var spd = SPD<8>()
    var result: Result<FirmwareConfig, ConfigError> = .failure(ConfigError(line: -1, reason: "not run"))
    t.withUTF8 { b in
        do throws(ConfigError) { result = .success(try FirmwareConfig.parse(UnsafeRawBufferPointer(b), spd: &spd)) }
        catch { result = .failure(error) }
    }
    return result
}
