/// Why a command or driver operation failed. Final result codes (V.250, TS 27.007 §9.2, TS 27.005 §3.2.5)
/// come first, then the engine's own failures.
public enum ATError: Error, Equatable, Sendable {
    case error
    case cme(Int)
    case cms(Int)
    case noCarrier
    case busy
    case noAnswer
    case noDialtone
    case sendFailed
    /// No final result code before the command's deadline.
    case timeout
    /// The module announced a restart (RDY, APP RDY, …) while the command was running.
    case rebooted
    case commandInvalid
    /// The response did not fit the fixed response buffer.
    case responseOverflow
    /// A response came back but not in the expected shape.
    case malformedResponse
    /// The dialect has no command for this operation (e.g. sockets on the generic profile).
    case unsupported
    case invalidArgument
    /// A socket operation's own result code was non-zero (`+CIPOPEN: 0,4`, `+QIOPEN: 0,563`).
    case socketError(Int)
    /// The socket is not open, or its id is out of the dialect's range.
    case noSuchSocket
    case transport(SerialError)

    /// `+CMS ERROR: 322`: SMS memory full (TS 27.005 §3.2.5).
    public static let cmsMemoryFull = 322
}

/// Final result of a command, as recognised on the wire.
public enum ATFinal: Equatable, Sendable {
    case ok
    case failed(ATError)

    /// Classifies a complete line; nil when it is not a final result code.
    static func classify(_ line: UnsafeRawBufferPointer) -> ATFinal? {
        guard line.count >= 2 else { return nil }
        if line.equals("OK") { return .ok }
        if line.equals("ERROR") { return .failed(.error) }
        if line.hasPrefix("+CME ERROR:") { return .failed(.cme(errorCode(line))) }
        if line.hasPrefix("+CMS ERROR:") { return .failed(.cms(errorCode(line))) }
        if line.equals("NO CARRIER") { return .failed(.noCarrier) }
        if line.equals("BUSY") { return .failed(.busy) }
        if line.equals("NO ANSWER") { return .failed(.noAnswer) }
        if line.equals("NO DIALTONE") || line.equals("NO DIAL TONE") { return .failed(.noDialtone) }
        // Socket sends on SIMCom 2G and Quectel end with these instead of OK.
        if line.equals("SEND OK") { return .ok }
        if line.equals("SEND FAIL") { return .failed(.sendFailed) }
        return nil
    }

    /// Numeric code after the colon; -1 for the verbose form (`+CME ERROR: SIM not inserted`).
    private static func errorCode(_ line: UnsafeRawBufferPointer) -> Int {
        // "+CME ERROR:" and "+CMS ERROR:" have the same length.
        var f = ATFields(line.suffix(from: 11))
        return f.int() ?? -1
    }
}
