import Testing
@testable import ProxyIKE

/// The VICI codec against strongSwan's published encoding example (src/libcharon/plugins/vici/README.md,
/// "Encoding example"), and malformed input refused with a typed error.
@Suite struct VICICodecTests {
    /// The README's C array, transcribed by hand.
    static let readmeExample: [UInt8] = {
        func s(_ t: String) -> [UInt8] { Array(t.utf8) }
        return [3, 4] + s("key1") + [0, 6] + s("value1")
            + [1, 8] + s("section1")
            + [1, 11] + s("sub-section")
            + [3, 4] + s("key2") + [0, 6] + s("value2")
            + [2]
            + [4, 5] + s("list1")
            + [5, 0, 5] + s("item1")
            + [5, 0, 5] + s("item2")
            + [6]
            + [2]
    }()

    /// Built afresh per use: held in a static, LeakSanitizer reported its arrays as leaked at exit.
    static var readmeTree: VICIMessage {
        var sub = VICIMessage()
        sub.add("key2", "value2")
        var section1 = VICIMessage()
        section1.add("sub-section", section: sub)
        section1.add("list1", list: ["item1", "item2"])
        var root = VICIMessage()
        root.add("key1", "value1")
        root.add("section1", section: section1)
        return root
    }

    @Test func decodesTheReadmeExample() throws {
        let m = try VICIMessage.decode(Self.readmeExample)
        #expect(m == Self.readmeTree)
        #expect(m.string("key1") == "value1")
        #expect(m.section("section1")?.section("sub-section")?.string("key2") == "value2")
        #expect(m.section("section1")?.list("list1") == ["item1", "item2"])
    }

    @Test func encodesTheReadmeExample() throws {
        #expect(try Self.readmeTree.encoded() == Self.readmeExample)
    }

    @Test func packetsFrameWithLengthTypeAndName() throws {
        // README "Packet layer": 32-bit length, type 0 (CMD_REQUEST), 8-bit name length, name, message.
        let framed = try VICIPacket.commandRequest("version", VICIMessage()).framed()
        #expect(framed == [0, 0, 0, 9, 0, 7] + Array("version".utf8))
        #expect(try VICIPacket.decode(Array(framed[4...])) == .commandRequest("version", VICIMessage()))
        #expect(try VICIPacket.decode([5]) == .eventConfirm)
        #expect(try VICIPacket.decode([7, 3] + Array("log".utf8) + Self.readmeExample) == .event("log", Self.readmeTree))
    }

    /// Every strict prefix of the example is refused (never a trap), except the one that ends right after
    /// `key1 = value1`: that is a whole message of its own.
    @Test func everyTruncationIsATypedError() throws {
        let firstElement = 14
        for n in 1..<Self.readmeExample.count where n != firstElement {
            let cut = Array(Self.readmeExample[0..<n])
            #expect(throws: VICIError.self) { try VICIMessage.decode(cut) }
        }
        var first = VICIMessage()
        first.add("key1", "value1")
        #expect(try VICIMessage.decode(Self.readmeExample[0..<firstElement]) == first)
    }

    @Test(arguments: [
        ([UInt8]([9]), VICIError.unknownElement(9)),
        ([2], .unbalancedSection),
        ([1, 1, 0x61], .unbalancedSection),
        ([4, 1, 0x61], .unclosedList),
        ([4, 1, 0x61, 3, 1, 0x62, 0, 0, 6], .elementOutsideList(3)),
        ([5, 0, 0], .itemOutsideList),
        ([6], .itemOutsideList),
        ([3, 1, 0xC3, 0, 0], .nameNotASCII),
        ([3, 1, 0x61, 0xFF, 0xFF, 1], .truncated),
    ])
    func malformedMessages(bytes: [UInt8], error: VICIError) {
        #expect(throws: error) { try VICIMessage.decode(bytes) }
    }

    @Test func boundsAreEnforced() {
        // Sections nested past our bound.
        let deep: [UInt8] = Array(repeating: [UInt8]([1, 1, 0x61]), count: VICI.maxDepth + 2).flatMap { $0 }
        #expect(throws: VICIError.tooDeep) { try VICIMessage.decode(deep) }
        // A length header beyond 512 KiB is refused before anything is read or allocated.
        #expect(throws: VICIError.segmentTooLarge(VICI.maxSegment + 1)) {
            try VICIPacket.segmentLength([0, 0x08, 0, 1])
        }
        #expect(throws: VICIError.truncated) { try VICIPacket.segmentLength([0, 0, 0, 0]) }
        var big = VICIMessage()
        big.add("k", bytes: [UInt8](repeating: 1, count: 0x10000))
        #expect(throws: VICIError.valueTooLong(0x10000)) { try big.encoded() }
        var longName = VICIMessage()
        longName.add(String(repeating: "n", count: 256), "v")
        #expect(throws: VICIError.self) { try longName.encoded() }
        #expect(throws: VICIError.unknownPacketType(8)) { try VICIPacket.decode([8]) }
        #expect(throws: VICIError.unexpectedPacket(5)) { try VICIPacket.decode([5, 0]) }
    }
}
