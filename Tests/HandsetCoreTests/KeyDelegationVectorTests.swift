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
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count >= 2, ["device", "epoch", "K_up", "K_down", "body", "message", "rule"].contains(parts[0]) else { continue }
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
        #expect(Self.doc["K_up"]?.count == 1 && Self.doc["message"]?.count == 2)
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

