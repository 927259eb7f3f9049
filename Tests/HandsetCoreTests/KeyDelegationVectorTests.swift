import Foundation
import Testing
@testable import HandsetCore

/// The vectors in docs/key-delegation.md §8 (also checked by tests/interop/test_kd_vectors.py with an independent
/// implementation). Reading them from the document keeps the document and the code in step.
@Suite struct KeyDelegationVectorTests {
    static let doc: [String: [String]] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../docs/key-delegation.md")
        let whole = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        let text = whole.components(separatedBy: "## 8. Test vectors").last ?? ""
        var fields: [String: [String]] = [:]
        var last: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // A long value goes on over indented lines of hex.
            if line.hasPrefix(" "), parts.count == 1, let key = last, parts[0].allSatisfy(\.isHexDigit) {
                fields[key]![fields[key]!.count - 1] += parts[0]
                continue
            }
            last = nil
            guard parts.count >= 2, ["device", "epoch", "K_up", "K_down", "body", "message", "rule", "transfer", "sealed"].contains(parts[0]) else { continue }
            if ["transfer", "sealed"].contains(parts[0]) { last = parts[0] }
            if parts[0] == "rule" { fields["rule", default: []].append(parts.dropFirst().joined(separator: " ")); continue }
            let key = parts[0] == "device" ? "device " + parts[1] : parts[0]
            let value = (parts[0] == "device" ? parts.dropFirst(2) : parts.dropFirst()).joined()
            fields[key, default: []].append(value)
        }
        return fields
    }()

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    var deviceKey: [UInt8] { Self.hex(Self.doc["device key"]![0]) }
    let deviceID: UInt64 = 0x0123_4567_89AB_CDEF

    @Test func documentHasTheVectors() {
        #expect(Self.doc["K_up"]?.count == 1 && Self.doc["message"]?.count == 2 && Self.doc["sealed"]?.count == 1)
    }

    @Test func counterRuleMatchesTheDocument() throws {
        let rows = try #require(Self.doc["rule"])
        #expect(rows.count >= 8)
        let names: [KDStatus: String] = [.ok: "ok", .counterLow: "low", .counterBlocked: "blocked"]
        for row in rows {
            let f = row.split(separator: " ").map(String.init)
            let last = try #require(UInt64(f[0], radix: 16)), received = try #require(UInt64(f[1], radix: 16))
            #expect(names[kdCheckCounter(received, lastAccepted: last)] == f[2], "\(row)")
        }
    }

    @Test(arguments: [(KDDirection.up, "K_up"), (.down, "K_down")])
    func keyDerivation(direction: KDDirection, field: String) throws {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = deviceKey.withUnsafeBytes { ikm in
            out.withUnsafeMutableBytes { DeliveryKeys.hkdf(ikm, deviceID: deviceID, epoch: 1, direction: direction, into: $0) }
        }
        #expect(ok)
        #expect(out == Self.hex(try #require(Self.doc[field]?.first)))
    }

    @Test func sealedMessagesMatchTheDocument() throws {
        var keys = DeliveryKeys()
        #expect(deviceKey.withUnsafeBytes { keys.derive(deviceKey: $0, deviceID: deviceID, epoch: 1) })
        let bodies = try #require(Self.doc["body"]).map(Self.hex)
        let messages = try #require(Self.doc["message"]).map(Self.hex)
        let cases: [(KDHeader, KDDirection)] = [
            (KDHeader(type: .login, epoch: 1, counter: 5, deviceID: deviceID), .up),
            (KDHeader(type: .confirmAck, epoch: 1, counter: 9), .down),
        ]
        for (i, (h, dir)) in cases.enumerated() {
            var out = [UInt8](repeating: 0, count: 128)
            let n = bodies[i].withUnsafeBytes { b in out.withUnsafeMutableBytes { keys.seal(h, direction: dir, body: b, into: $0) } }
            #expect(n.map { Array(out[0..<$0]) } == messages[i])
            // And it opens back to the body, with the header read from the wire.
            let parsed = try #require(messages[i].withUnsafeBytes { KDHeader.parse($0, direction: dir) })
            #expect(parsed == h)
            var plain = [UInt8](repeating: 0, count: 64)
            let m = messages[i].withUnsafeBytes { w in plain.withUnsafeMutableBytes { keys.open(w, header: parsed, direction: dir, into: $0) } }
            #expect(m.map { Array(plain[0..<$0]) } == bodies[i])
        }
    }

    /// §8's sa-transfer with a handset address (flag bit 7): it opens under K_down, decodes to the fields the
    /// document lists, and encodes back to the same bytes.
    @Test func saTransferWithAHandsetAddressMatchesTheDocument() throws {
        var keys = DeliveryKeys()
        #expect(deviceKey.withUnsafeBytes { keys.derive(deviceKey: $0, deviceID: deviceID, epoch: 1) })
        let body = Self.hex(try #require(Self.doc["transfer"]?.first))
        let sealed = Self.hex(try #require(Self.doc["sealed"]?.first))
        let h = try #require(sealed.withUnsafeBytes { KDHeader.parse($0, direction: .down) })
        #expect(h == KDHeader(type: .saTransfer, epoch: 1, counter: 10))
        var plain = [UInt8](repeating: 0, count: 160)
        let n = sealed.withUnsafeBytes { w in plain.withUnsafeMutableBytes { keys.open(w, header: h, direction: .down, into: $0) } }
        #expect(n.map { Array(plain[0..<$0]) } == body)
        let decoded = body.withUnsafeBytes { KDBody.decode(.saTransfer, $0) }
        guard case .saTransfer(let t) = try #require(decoded) else { Issue.record("not an sa-transfer"); return }
        #expect(t.handset == IPAddress(10, 202, 7, 1) && t.remote == IPAddress(10, 200, 0, 1) && t.peer == IPAddress(192, 0, 2, 1))
        #expect(t.keyLength == 16 && t.tunnel && t.requestID == 7 && t.outboundSPI == 0xC100_0001 && t.remotePort == 7)
        var out = [UInt8](repeating: 0, count: 160)
        let m = out.withUnsafeMutableBytes { b -> Int in
            var w = WireWriter(b)
            KDBody.saTransfer(t).encode(into: &w)
            return w.count
        }
        #expect(Array(out[0..<m]) == body)
        // A handset address no handset may hold makes the transfer malformed.
        for bad: [UInt8] in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1]] {
            let b = Array(body.dropLast(4)) + bad
            #expect(b.withUnsafeBytes { KDBody.decode(.saTransfer, $0) } == nil)
        }
    }

    /// §4's status list and KDStatus agree, code for code (the negotiation failures 11-14 included).
    @Test func statusCodesMatchTheDocument() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/key-delegation.md")
        let whole = try String(contentsOf: url, encoding: .utf8)
        let line = try #require(whole.components(separatedBy: "Status codes: ").dropFirst().first?.components(separatedBy: ".").first)
        let listed = line.split(separator: ",").map { $0.split(whereSeparator: \.isWhitespace) }
        #expect(listed.count == 15)
        for words in listed {
            let code = try #require(UInt8(words[0]))
            #expect(KDStatus(rawValue: code) != nil, "code \(code) is documented but not in KDStatus")
        }
        #expect(KDStatus(rawValue: 15) == nil)
        #expect(KDStatus.noProposalChosen.rawValue == 11 && KDStatus.authenticationFailed.rawValue == 12)
        #expect(KDStatus.peerTimeout.rawValue == 13 && KDStatus.peerUnreachable.rawValue == 14)
    }
}

