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

    public func setupCommand(_ i: Int) -> StaticString { setup[i] }
}
