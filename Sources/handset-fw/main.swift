import BearerDriver
import CHandsetShim
import HandsetCore

// Handset firmware entry. `handset-fw selftest` runs the known-answer tests; `handset-fw run CONFIG` runs the
// firmware. Arguments are read without Foundation so the same file builds as Embedded Swift.
func firmwareMain() -> Int32 {
    hs_stdout_line_buffered()
    let args = Arguments()
    if args.count >= 2 && args.isEqual(1, "selftest") {
        let r = SelfTest.run()
        print("\(r.passed) passed, \(r.failed) failed")
        return r.failed == 0 && r.passed > 0 ? 0 : 1
    }
    if args.count == 3 && args.isEqual(1, "run") {
        // Before any key is read: a core file would hold the device key and every SA key.
        let rc = hs_disable_core_dumps()
        guard rc == 0 else { print("handset-fw: cannot disable core dumps (errno \(-rc))"); return 1 }
        return runFirmware(configPath: hs_argv(2)!)
    }
    if args.count == 3 && args.isEqual(1, "status") {
        return statusCommand(configPath: hs_argv(2)!)
    }
    if args.count == 2 && (args.isEqual(1, "--help") || args.isEqual(1, "-h") || args.isEqual(1, "help")) {
        print(help)
        return 0
    }
    print("usage: handset-fw selftest | run CONFIG | status CONFIG   (handset-fw --help; docs/firmware.md)")
    return 2
}

let help: StaticString = """
    usage: handset-fw selftest | run CONFIG | status CONFIG

      selftest       known-answer tests of the crypto and codecs; prints "N passed, M failed", exits 0 if none failed
      run CONFIG     the firmware: CONFIG holds `key = value` lines (docs/firmware.md, Configuration); runs until
                     SIGTERM or SIGINT
      status CONFIG  asks the firmware running with CONFIG for its counters (firmware, modem driver, data plane,
                     key delegation, each SA; no keys) and prints them as `name value` lines; run it as app_uid

    Examples:
      handset-fw selftest
      handset-fw run /etc/handset/handset.conf   # illustrative: needs a provisioned state_dir and the modem's serial port
    """

/// Reads and parses CONFIG, filling `spd`; reports a read or parse error (file, line, key) and returns nil.
func loadConfig<let n: Int>(_ configPath: UnsafePointer<CChar>, spd: inout SPD<n>) -> FirmwareConfig? {
    var text = InlineArray<4096, UInt8>(repeating: 0)
    let n = withUnsafeMutableBytes(of: &text) { b in
        Int(hs_file_read(configPath, b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count))
    }
    guard n >= 0 else {
        LogLine("handset-fw: cannot read the config file ").append(cString: configPath).append(": ").append(errno: Int32(-n)).emit()
        return nil
    }
    var failure = ConfigError(line: 0, reason: "")
    let parsed = withUnsafeBytes(of: text) { b -> FirmwareConfig? in
        do throws(ConfigError) {
            return try FirmwareConfig.parse(UnsafeRawBufferPointer(rebasing: b[0..<n]), spd: &spd)
        } catch {
            failure = error
            return nil
        }
    }
    if parsed == nil { reportConfigError(failure, path: configPath) }
    return parsed
}

func runFirmware(configPath: UnsafePointer<CChar>) -> Int32 {
    var plane = HandsetDataPlane()
    guard var config = loadConfig(configPath, spd: &plane.spd) else { return 1 }
    guard loadSIMPINFile(&config) else { return 1 }
    var dir = config.stateDir
    guard let store = withUnsafeBytes(of: &dir, { d in FileKeyStore(directory: d.baseAddress!.assumingMemoryBound(to: CChar.self)) }) else {
        print("handset-fw: state_dir too long")
        return 1
    }
    let kd: KeyDelegationClient<FileKeyStore>
    do {
        kd = try KeyDelegationClient(store: store)
    } catch {
        print("handset-fw: no usable device key in state_dir (provision with `handset-emu provision`)")
        return 1
    }
    guard kd.keysUsable else { print("handset-fw: device key could not be set up"); return 1 }
    if let reason = refusalToStart(random: kd.random) { print("handset-fw: \(reason)"); return 1 }
    var serialPath = config.serial
    var serialFailure = SerialError(kind: .other, errno: 0)
    let opened = withUnsafeBytes(of: &serialPath) { p -> SerialPort? in
        do throws(SerialError) {
            return try SerialPort(path: p.baseAddress!.assumingMemoryBound(to: CChar.self), baud: config.baud, rtscts: config.rtscts)
        } catch {
            serialFailure = error
            return nil
        }
    }
    guard let port = opened else {
        withUnsafeBytes(of: &serialPath) { p in
            LogLine("handset-fw: cannot open the serial device ").append(cString: p.baseAddress!.assumingMemoryBound(to: CChar.self))
                .append(": ").append(errno: serialFailure.errno).emit()
        }
        return 1
    }
    _ = hs_stop_signals_install()
    print("fw: booting")
    var fw = Firmware(config: config, plane: plane, kd: kd, driver: ATDriver(transport: port))
    let status = fw.run()
    if hs_heap_counting() != 0 {
        // What the one expected kind of later allocation (an AES context per SA key) is bounded by.
        LogLine("heap: ").append(fw.kd.counters.sasInstalled).append(" SAs installed").emit()
    }
    hs_heap_report()
    return status
}

/// `FILE:LINE: KEY: allowed values`, and for an unknown key the keys there are.
func reportConfigError(_ e: ConfigError, path: UnsafePointer<CChar>) {
    var line = LogLine("handset-fw: ").append(cString: path)
    if e.line > 0 { line = line.append(":").append(e.line) }
    line = line.append(": ")
    // Most reasons start with their key ("baud must be ...", "dialect: auto, ..."): the key is not said twice.
    let saysKey = e.key.withBytes { k -> Bool in
        guard k.count > 0, k.count < e.reason.utf8CodeUnitCount else { return false }
        for i in 0..<k.count where k[i] != e.reason.utf8Start[i] { return false }
        return e.reason.utf8Start[k.count] == 0x3A || e.reason.utf8Start[k.count] == 0x20  // ':' or ' '
    }
    if e.key.count > 0 && !saysKey { line = e.key.withBytes { line.append(bytes: $0) }.append(": ") }
    line.append(e.reason).emit()
    if e.unknownKey {
        print("handset-fw: the keys are:", terminator: "")
        for k in FirmwareConfig.keys { print(" ", terminator: ""); print(k, terminator: "") }
        print(" (docs/firmware.md, Configuration)")
    }
}

hs_exit(firmwareMain())
