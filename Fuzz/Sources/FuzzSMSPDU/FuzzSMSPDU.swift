// The SMS receive path: PDUs decoded (hex as +CMGR/+CMT carry them, or binary) and fed to a reassembler.
// Byte 0: bit 0 = hex, bit 1 = no SMSC field. Then records: length (1 byte), clock step in seconds (1 byte),
// that many PDU bytes; a short tail is one last record.
import BearerDriver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMSPDU(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let all = UnsafeRawBufferPointer(start: data, count: size)
    let hex = all[0] & 1 != 0
    let smsc = all[0] & 2 == 0
    var r = SMSReassembler<2, 4>(timeout: 60)
    var out = [UInt8](repeating: 0, count: 4 * 160)
    var now: UInt64 = 0
    var pos = 1
    while pos < size {
        var n = size - pos
        var step: UInt64 = 0
        if n >= 2 {
            n = min(Int(all[pos]), n - 2)
            step = UInt64(all[pos + 1])
            pos += 2
        }
        let pdu = UnsafeRawBufferPointer(rebasing: all[pos..<pos + n])
        pos += n
        now += step
        let decoded: SMSMessage
        do {
            decoded = hex ? try SMSPDU.decode(hex: pdu, smscPresent: smsc) : try SMSPDU.decode(pdu, smscPresent: smsc)
        } catch { continue }
        let before = r.pending
        out.withUnsafeMutableBytes { o in
            if case .complete(let done)? = try? r.accept(decoded, now: now, into: o) {
                precondition(done.count <= o.count)
            }
        }
        precondition(r.pending <= 2 && (before == r.pending || r.pending >= 0))
    }
    _ = r.expire(now: now + 3600)
    precondition(r.pending == 0)
    return 0
}
