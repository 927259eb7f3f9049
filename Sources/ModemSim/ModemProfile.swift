// Per-vendor identity strings and quirks, as data. The engine reads these tables; it never branches on a vendor name,
// only on `SocketDialect`, because the three socket command sets differ in shape, not just in spelling.
// Sources: SIMCom SIM7500/SIM7600 Series AT Command Manual V3.00; Quectel BG96 AT Commands Manual V2.3 and
// BG96 TCP/IP AT Commands Manual V1.0; u-blox SARA-R4 series AT commands manual (UBX-17003787); 3GPP TS 27.007 / 27.005.

/// Which socket command family a module speaks.
public enum SocketDialect: String, Sendable, CaseIterable {
    case none       // generic 3GPP module: no vendor socket commands
    case simcom     // AT+NETOPEN / +CIPOPEN / +CIPSEND / +IPD / +CIPCLOSE
    case quectel    // AT+QIACT / +QIOPEN "UDP SERVICE" / +QISEND / +QIURC "recv" / +QIRD / +QICLOSE
    case ublox      // AT+USOCR / +USOST / +UUSORF / +USORF / +USOCL
    case sim800     // AT+CIPMUX / +CSTT / +CIICR / +CIFSR / +CIPSTART / +CIPSEND / +RECEIVE / +CIPRXGET / +CIPCLOSE
}

/// How a profile answers AT+CCID (and its vendor alias).
public struct ICCIDCommand: Sendable {
    public var command: String      // e.g. "+CICCID"
    public var prefix: String       // e.g. "+ICCID: "; empty means the bare number
}

public struct ModemProfile: Sendable {
    public var name: String
    public var manufacturer: String         // AT+CGMI
    public var model: String                // AT+CGMM
    public var revision: String             // AT+CGMR
    public var revisionPrefix: String       // SIMCom answers "+CGMR: ..."
    public var atiLines: [String]           // ATI; "%M", "%N", "%R", "%I" are replaced by manufacturer/model/revision/IMEI
    public var bootBanners: [String]        // URCs printed after power-on or reboot, in order
    public var iccidCommands: [ICCIDCommand]
    public var smsPrompt: String            // after AT+CMGS=<len>
    public var socketPrompt: String         // before socket payload
    public var socketDialect: SocketDialect
    public var socketCount: Int             // link ids 0..<socketCount
    public var smsSlots: Int                // fixed SMS storage size
    public var smsFirstIndex: Int           // first storage index: 0 or 1 depending on the module
    public var defaultCNMI: [Int]           // <mode>,<mt>,<bm>,<ds>,<bfr> after boot
    public var accessTechnology: Int        // <AcT> of TS 27.007 in +COPS / +CxREG
    public var simcomRecvFrom: Bool         // SIMCom AT+CIPSRIP default: prefix "RECV FROM:ip:port"
    public var resetCommands: [String] = [] // vendor reboot commands besides AT+CFUN=1,1
    /// URC for full SMS storage (SIM7600 "+SMSFULL"; Quectel "+QIND: "smsfull"" once AT+QINDCFG="smsfull",1).
    public var smsFullURC: String? = nil
    public var smsFullURCNeedsEnable = false
    /// The SIM PIN retry counter command the module answers (ModemEngine+SIM.swift).
    public var pinCounter: PINCounterCommand = .cpinr

    public static let simcom = ModemProfile(
        name: "simcom", manufacturer: "SIMCOM INCORPORATED", model: "SIMCOM_SIM7600E-H",
        revision: "LE20B04SIM7600M22", revisionPrefix: "+CGMR: ",
        atiLines: ["Manufacturer: %M", "Model: %N", "Revision: %R", "IMEI: %I", "+GCAP: +CGSM"],
        bootBanners: ["RDY", "+CPIN: READY", "SMS DONE", "PB DONE"],
        iccidCommands: [ICCIDCommand(command: "+CICCID", prefix: "+ICCID: "),
                        ICCIDCommand(command: "+CCID", prefix: "+ICCID: ")],
        smsPrompt: "> ", socketPrompt: ">", socketDialect: .simcom, socketCount: 10,
        smsSlots: 10, smsFirstIndex: 0, defaultCNMI: [2, 1, 0, 0, 0], accessTechnology: 7, simcomRecvFrom: true,
        resetCommands: ["+CRESET"], smsFullURC: "+SMSFULL", pinCounter: .spic)

    public static let quectel = ModemProfile(
        name: "quectel", manufacturer: "Quectel", model: "BG96",
        revision: "BG96MAR02A07M1G", revisionPrefix: "",
        atiLines: ["%M", "%N", "Revision: %R"],
        bootBanners: ["RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "APP RDY"],
        iccidCommands: [ICCIDCommand(command: "+QCCID", prefix: "+QCCID: "),
                        ICCIDCommand(command: "+CCID", prefix: "+CCID: ")],
        smsPrompt: "> ", socketPrompt: "> ", socketDialect: .quectel, socketCount: 12,
        smsSlots: 10, smsFirstIndex: 0, defaultCNMI: [2, 1, 0, 0, 0], accessTechnology: 8, simcomRecvFrom: false,
        smsFullURC: "+QIND: \"smsfull\",\"SM\"", smsFullURCNeedsEnable: true, pinCounter: .qpinc)

    public static let ublox = ModemProfile(
        name: "ublox", manufacturer: "u-blox", model: "SARA-R410M-02B",
        revision: "L0.0.00.00.05.08 [Apr 17 2019 19:34:02]", revisionPrefix: "",
        atiLines: ["Manufacturer: %M", "Model: %N", "Revision: %R", "SVN: 02", "IMEI: %I"],
        bootBanners: [],
        iccidCommands: [ICCIDCommand(command: "+CCID", prefix: "+CCID: ")],
        smsPrompt: "> ", socketPrompt: "@", socketDialect: .ublox, socketCount: 7,
        smsSlots: 10, smsFirstIndex: 1, defaultCNMI: [1, 0, 0, 0, 0], accessTechnology: 7, simcomRecvFrom: false,
        pinCounter: .upincnt)

    /// SIMCom SIM800L (2G). Identity strings as SIM800L modules answer them in public logs (AT+CGMI "SIMCOM_Ltd",
    /// AT+CGMM "SIMCOM_SIM800L", ATI "SIM800 R14.18", AT+CCID the bare number; not checked against the manual);
    /// boot: RDY, +CFUN: 1, +CPIN: READY, Call Ready, SMS Ready. Connections 0..5 (SIM800 Series AT Command
    /// Manual V1.09 §8.2.2 <n>); sockets in ModemEngine+CIPSTART.swift.
    public static let sim800 = ModemProfile(
        name: "sim800", manufacturer: "SIMCOM_Ltd", model: "SIMCOM_SIM800L",
        revision: "Revision:1418B04SIM800L24", revisionPrefix: "",
        atiLines: ["SIM800 R14.18"],
        bootBanners: ["RDY", "+CFUN: 1", "+CPIN: READY", "Call Ready", "SMS Ready"],
        iccidCommands: [ICCIDCommand(command: "+CCID", prefix: "")],
        smsPrompt: "> ", socketPrompt: "> ", socketDialect: .sim800, socketCount: 6,
        smsSlots: 10, smsFirstIndex: 1, defaultCNMI: [2, 1, 0, 0, 0], accessTechnology: 0, simcomRecvFrom: false,
        pinCounter: .spic)

    public static let generic = ModemProfile(
        name: "generic", manufacturer: "Generic", model: "GSM-LTE Module",
        revision: "1.0", revisionPrefix: "",
        atiLines: ["%M %N", "Revision: %R"],
        bootBanners: [],
        iccidCommands: [ICCIDCommand(command: "+CCID", prefix: "+CCID: ")],
        smsPrompt: "> ", socketPrompt: "> ", socketDialect: .none, socketCount: 0,
        smsSlots: 10, smsFirstIndex: 1, defaultCNMI: [0, 0, 0, 0, 0], accessTechnology: 7, simcomRecvFrom: false)

    public static let all: [ModemProfile] = [.simcom, .quectel, .ublox, .generic, .sim800]

    public static func named(_ name: String) -> ModemProfile? {
        all.first { $0.name == name.lowercased() }
    }
}

/// The SIM and the network the simulated module sees. Test PLMN 001-01 (TS 23.003 reserves MCC 001 for testing).
public struct SubscriberIdentity: Sendable {
    public var imei = "861234050012347"
    public var imsi = "001010123456789"
    public var iccid = "8900101234567890123"
    public var ownNumber = "+15550100001"
    public var smscNumber = "+15550109999"
    public var operatorLong = "Handset Emu"
    public var operatorShort = "HEMU"
    public var operatorNumeric = "00101"
    public var lac = 0x1A2B
    public var cellID = 0x01C3D4E5
    public var rssi = 20       // +CSQ <rssi>, 0...31
    public var ber = 99
    /// The SIM's PIN (nil: PIN check off), PUK, and the tries left for each (on the card: they survive reboots).
    /// `pinTries` 0 starts the SIM in SIM PUK.
    public var pin: String? = nil
    public var puk = "12345678"
    public var pinTries = 3
    public var pukTries = 10
    public init() {}
}
