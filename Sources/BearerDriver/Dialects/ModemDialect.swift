/// Which command family a module's socket commands belong to. The argument order differs between
/// families, so each has one small builder in ATDriver+Sockets; the strings themselves live here.
public enum SocketStyle: Sendable, Equatable {
    /// SIMCom SIM7500/SIM7600: AT+NETOPEN, AT+CIPOPEN, AT+CIPSEND (`>`), pushed `+IPD` data, +IPCLOSE.
    case simcomCIP
    /// Quectel BG96/EG25: AT+QIACT, AT+QIOPEN "UDP SERVICE", AT+QISEND (`>`), +QIURC "recv" + AT+QIRD.
    case quectelQI
    /// u-blox SARA: AT+USOCR=17, AT+USOST binary syntax (`@`), +UUSORF + AT+USORF in hex mode.
    case ubloxUSO
    /// SIMCom SIM800/SIM900 in multi-connection mode: AT+CIPSTART=<n>,"UDP" (`<n>, CONNECT OK`), the
    /// destination set per datagram with AT+CIPUDPMODE=<n>,2, AT+CIPSEND=<n>,<len> (`<n>, SEND OK`), pushed
    /// `+RECEIVE,<n>,<len>,<ip>:<port>` data.
    case simcomCIPSTART
}

/// What a socket URC means to the driver.
public enum SocketURCMeaning: Sendable, Equatable {
    /// An acknowledgement that needs no action (`+CIPSEND:`, `+QIOPEN:` after our own open).
    case ignore
    /// `RECV FROM:<ip>:<port>`: the sender of the datagram pushed next.
    case sender
    /// A pushed datagram; the bytes are the line's raw body.
    case data
    /// Data waits in the module for a read command.
    case readable
    /// The network or the module closed one socket.
    case closed
    /// The data bearer went down: every socket is gone.
    case bearerDown
}

/// One row of a dialect's socket URC table: the line it matches, what it means, and where its fields are.
public struct SocketURC: Sendable {
    public let match: ATLineRule
    public let meaning: SocketURCMeaning
    /// Field holding the socket id, counted after the prefix (for numbered rows field 0 is the number);
    /// -1: the line names none (SIMCom `+IPD`, SIM800 single-connection `CLOSED`: the lowest open socket).
    public let id: Int
    /// Field holding the sender as `<ip>:<port>`, -1 when none.
    public let sender: Int

    public init(_ prefix: StaticString, _ meaning: SocketURCMeaning, id: Int = -1, sender: Int = -1,
                numbered: Bool = false) {
        match = ATLineRule(prefix, numbered: numbered)
        self.meaning = meaning
        self.id = id
        self.sender = sender
    }

    static let unused = SocketURC("", .ignore)
}

/// A dialect's socket URCs in the order they are tried; the first row that matches a line decides.
public struct SocketURCTable: Sendable {
    public static let capacity = 12
    var rows: InlineArray<12, SocketURC>
    public private(set) var count = 0

    public init() { rows = InlineArray(repeating: .unused) }

    /// Adds a row; returns false when the table is full.
    @discardableResult
    public mutating func add(_ row: SocketURC) -> Bool {
        if count >= Self.capacity { return false }
        rows[count] = row
        count += 1
        return true
    }

    public func row(_ i: Int) -> SocketURC { rows[i] }
}

/// A module's socket command set as data.
public struct SocketCommands: Sendable {
    public let style: SocketStyle
    /// Brings the data bearer up (after +CGDCONT / attach); its asynchronous result URC, if any.
    public let netOpen: StaticString
    public let netOpenURC: StaticString
    public let netClose: StaticString
    /// Run before `netOpen`, failures tolerated: a reset to the bearer's initial state, then a mode set-up
    /// that only takes there (SIM800: AT+CIPSHUT, AT+CIPMUX=1); empty when none.
    public var netReset: StaticString = ""
    public var netPrepare: StaticString = ""
    /// Takes the APN (quoted) right before `netOpen` (SIM800 AT+CSTT=); empty when +CGDCONT is enough.
    public var netAPN: StaticString = ""
    /// Sets the context up for the socket stack right after +CGDCONT, as `<cid>,1,"<apn>"` (Quectel AT+QICSGP=,
    /// context type 1: IPv4); empty when +CGDCONT is enough.
    public var contextAPN: StaticString = ""
    /// Run after `netOpen`; its answer is the local address alone, with no final result (SIM800 AT+CIFSR).
    public var netAddress: StaticString = ""
    public let open: StaticString
    /// Asynchronous result of `open` (`+CIPOPEN: <id>,<err>`); empty when the answer is synchronous.
    public let openURC: StaticString
    /// SIM800: the text of a successful `openURC` (`<n>, CONNECT OK`), the local-port command run before
    /// `open` (AT+CLPORT=<n>,"UDP",<port>) and the per-socket UDP mode command (AT+CIPUDPMODE=<n>,<mode>[,…]).
    public var openOK: StaticString = ""
    /// SIM800: the answer when the connection number is still in use (`<n>, ALREADY CONNECT`).
    public var openTaken: StaticString = ""
    /// SIM800 single-connection mode (AT+CIPMUX=0): commands and answers name no connection number, and the
    /// one connection is 0 to the driver.
    public var singleConnection = false
    public var bind: StaticString = ""
    public var aim: StaticString = ""
    public let send: StaticString
    public let sendPrompt: UInt8
    /// Pause between the prompt and the data (u-blox asks for at least 50 ms).
    public let promptDelayMs: Int
    /// Command and answer prefix that read buffered data; empty when data is pushed.
    public let read: StaticString
    public let readAnswer: StaticString
    public let close: StaticString
    public let maxPayload: Int
    public let maxSockets: Int
    /// Received data arrives as hex text (u-blox after AT+UDCONF=1,1).
    public let hexReceive: Bool
    /// The socket URCs: data, data waiting, closed sockets, bearer loss, acknowledgements.
    public let urcs: SocketURCTable
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
