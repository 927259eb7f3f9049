/// Which command family a module's socket commands belong to. The argument order differs between
/// families, so each has one small builder in ATDriver+Sockets; the strings themselves live here.
public enum SocketStyle: Sendable, Equatable {
    /// SIMCom SIM7500/SIM7600: AT+NETOPEN, AT+CIPOPEN, AT+CIPSEND (`>`), pushed `+IPD` data, +IPCLOSE.
    case simcomCIP
    /// Quectel BG96/EG25: AT+QIACT, AT+QIOPEN "UDP SERVICE", AT+QISEND (`>`), +QIURC "recv" + AT+QIRD.
    case quectelQI
    /// u-blox SARA: AT+USOCR=17, AT+USOST binary syntax (`@`), +UUSORF + AT+USORF in hex mode.
    case ubloxUSO
}

/// A module's socket command set as data.
public struct SocketCommands: Sendable {
    public let style: SocketStyle
    /// Brings the data bearer up (after +CGDCONT / attach); its asynchronous result URC, if any.
    public let netOpen: StaticString
    public let netOpenURC: StaticString
    public let netClose: StaticString
    public let open: StaticString
    /// Asynchronous result of `open` (`+CIPOPEN: <id>,<err>`); empty when the answer is synchronous.
    public let openURC: StaticString
    public let send: StaticString
    public let sendPrompt: UInt8
    /// Pause between the prompt and the data (u-blox asks for at least 50 ms).
    public let promptDelayMs: Int
    /// Data-available URC; for pushed data it carries the bytes itself.
    public let receiveURC: StaticString
    /// Command and answer prefix that read buffered data; empty when data is pushed.
    public let read: StaticString
    public let readAnswer: StaticString
    public let close: StaticString
    /// Sent by the module when the network (or the module) closes a socket.
    public let closedURC: StaticString
    public let maxPayload: Int
    public let maxSockets: Int
    /// Received data arrives as hex text (u-blox after AT+UDCONF=1,1).
    public let hexReceive: Bool
}

/// How a module tells how many SIM PIN tries are left (read before a PIN is entered, never guessed).
/// Shapes, as the vendors' manuals give them and ofono's drivers/atmodem/sim.c and ModemManager's u-blox helpers
/// parse them: SIMCom `AT+SPIC` → `+SPIC: <pin1>,<puk1>,<pin2>,<puk2>`; Quectel `AT+QPINC="SC"` →
/// `+QPINC: "SC",<pin>,<puk>`; u-blox `AT+UPINCNT` → `+UPINCNT: <pin1>,<pin2>,<puk1>,<puk2>`; 3GPP TS 27.007
/// `AT+CPINR="SIM PIN"` → `+CPINR: SIM PIN,<retries>,<default>` for everything else.
public struct PINCounterQuery: Sendable {
    public let command: StaticString
    public let answer: StaticString
    /// Field of the answer line (after `answer`) holding the PIN1 tries left.
    public let field: Int
    /// When not empty, only an answer line whose first field is this counts (`"SC"`, `SIM PIN`).
    public let facility: StaticString

    public static let spic = PINCounterQuery(command: "AT+SPIC", answer: "+SPIC:", field: 0, facility: "")
    public static let qpinc = PINCounterQuery(command: "AT+QPINC=\"SC\"", answer: "+QPINC:", field: 1, facility: "SC")
    public static let upincnt = PINCounterQuery(command: "AT+UPINCNT", answer: "+UPINCNT:", field: 0, facility: "")
    public static let cpinr = PINCounterQuery(command: "AT+CPINR=\"SIM PIN\"", answer: "+CPINR:", field: 1,
                                              facility: "SIM PIN")
}

/// Everything that differs between modem vendors, as one value: URC prefixes and their bodies,
/// initialisation commands, socket commands, prompts and quirks. Code reads the table; it never
/// branches on a vendor name.
public struct ModemDialect: Sendable {
    public enum Vendor: Sendable, Equatable { case generic, simcom, quectel, ublox }

    public let vendor: Vendor
    /// Short profile name for reports (`simcom`, `quectel`, `ublox`, `generic`).
    public let name: StaticString
    /// URC and raw-data rules loaded into the engine.
    public let rules: ATLineRules
    /// Vendor set-up run after the common 27.007 set-up; failures there are tolerated.
    public let setup: InlineArray<4, StaticString>
    public let setupCount: Int
    /// Vendor URC announcing full SMS storage (besides `+CMS ERROR: 322`); empty when none.
    public let smsFullURC: StaticString
    /// Registration read commands worth asking on this module (LTE-only modules reject +CREG? on some firmware).
    public let asksCEREG: Bool
    public let sockets: SocketCommands?
    /// Time a module may take to answer AT+CMGS (network round trip).
    public let smsSendTimeoutMs: Int
    /// The PIN retry counter (a default so that a table written without it still reads the 27.007 one).
    public var pinCounter: PINCounterQuery = .cpinr

    public func setupCommand(_ i: Int) -> StaticString { setup[i] }
}
