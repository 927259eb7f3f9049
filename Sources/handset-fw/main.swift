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
    print("usage: handset-fw selftest | run CONFIG   (see docs/firmware.md)")
    return 2
}

func runFirmware(configPath: UnsafePointer<CChar>) -> Int32 {
    var text = InlineArray<4096, UInt8>(repeating: 0)
    let n = withUnsafeMutableBytes(of: &text) { b in
        Int(hs_file_read(configPath, b.baseAddress!.assumingMemoryBound(to: UInt8.self), b.count))
    }
    guard n >= 0 else { print("handset-fw: cannot read the config file (errno \(-n))"); return 1 }
    var plane = HandsetDataPlane()
    var failure = ConfigError(line: 0, reason: "")
    let parsed = withUnsafeBytes(of: text) { b -> FirmwareConfig? in
        do throws(ConfigError) {
            return try FirmwareConfig.parse(UnsafeRawBufferPointer(rebasing: b[0..<n]), spd: &plane.spd)
        } catch {
            failure = error
            return nil
        }
    }
    guard let config = parsed else {
        print("handset-fw: config line \(failure.line): \(failure.reason)")
        return 1
    }
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
    let opened = withUnsafeBytes(of: &serialPath) { p -> SerialPort? in
        do throws(SerialError) {
            return try SerialPort(path: p.baseAddress!.assumingMemoryBound(to: CChar.self), baud: config.baud, rtscts: config.rtscts)
        } catch {
            return nil
        }
    }
    guard let port = opened else {
        print("handset-fw: cannot open the serial device")
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

hs_exit(firmwareMain())
