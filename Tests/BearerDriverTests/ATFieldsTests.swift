// Quote-aware field parsing. Line shapes from TS 27.007 §7.3 (+COPS), §8.5 (+CSQ) and TS 27.005 §3.4.3 (+CMGR).
import Testing
@testable import BearerDriver

@Suite struct ATFieldsTests {
    @Test func commaInsideQuotesDoesNotSplit() {
        bytes("+COPS: 0,0,\"Foo, Bar\",7").withUnsafeBytes { line in
            var f = ATFields(line, after: "+COPS:")
            #expect(f.int() == 0)
            #expect(f.int() == 0)
            #expect(f.string()?.text == "Foo, Bar")
            #expect(f.int() == 7)
            #expect(f.isAtEnd)
            #expect(!f.failed)
        }
    }

    @Test func emptyFieldsAreOptionalNotFailures() {
        bytes("+CMGR: 0,,23").withUnsafeBytes { line in
            var f = ATFields(line, after: "+CMGR:")
            #expect(f.int() == 0)
            #expect(f.optionalInt() == nil)
            #expect(!f.failed)
            #expect(f.int() == 23)
        }
    }

    @Test func errorsAreStickyLikeUbxlib() {
        bytes("+CSQ: x,99").withUnsafeBytes { line in
            var f = ATFields(line, after: "+CSQ:")
            #expect(f.int() == nil)
            #expect(f.failed)
            #expect(f.int() == nil)  // 99 is never read once the cursor failed
        }
    }

    @Test func missingPrefixFailsAndReadsNothing() {
        bytes("+CREG: 1").withUnsafeBytes { line in
            var f = ATFields(line, after: "+CGREG:")
            #expect(f.failed)
            #expect(f.string() == nil)
        }
    }

    @Test func unterminatedQuoteFails() {
        bytes("+COPS: 0,0,\"Foo").withUnsafeBytes { line in
            var f = ATFields(line, after: "+COPS:")
            f.skip(2)
            #expect(f.string() == nil)
            #expect(f.failed)
        }
    }

    @Test func hexFieldsAndRemainingCount() {
        bytes("+CEREG: 2,1,\"1A2B\",\"01C3D4E5\",7").withUnsafeBytes { line in
            var f = ATFields(line, after: "+CEREG:")
            #expect(f.remaining == 5)
            f.skip(2)
            #expect(f.optionalHex() == 0x1A2B)
            #expect(f.optionalHex() == 0x01C3_D4E5)
            #expect(f.remaining == 1)
        }
    }
}

@Suite struct ATCommandTests {
    @Test func argumentsAreCommaSeparatedAndQuoted() {
        var c = ATCommand("AT+CIPOPEN=")
        c.int(0)
        c.quoted("UDP")
        c.empty()
        c.empty()
        c.int(5000)
        c.withBytes { #expect($0.text == "AT+CIPOPEN=0,\"UDP\",,,5000") }
        #expect(!c.invalid)
    }

    @Test func ipv4IsDottedDecimal() {
        var c = ATCommand("AT+X=")
        c.quoted(ipv4: 0xC0A8_0001)
        c.int(-5)
        c.withBytes { #expect($0.text == "AT+X=\"192.168.0.1\",-5") }
    }

    @Test func overflowIsStickyAndKeepsTheLengthBounded() {
        var c = ATCommand("AT+X=")
        for _ in 0..<100 { c.int(123_456) }
        #expect(c.invalid)
        #expect(c.count <= ATCommand.capacity)
    }

    @Test func controlBytesInAQuotedArgumentAreRefused() {
        var c = ATCommand("AT+CGDCONT=")
        [UInt8]([0x61, 0x0D, 0x62]).withUnsafeBytes { c.quoted($0) }
        #expect(c.invalid)
    }
}

@Suite struct ATCommandEdgeTests {
    @Test func extremeIntegersFormatWithoutTrapping() {
        var c = ATCommand("AT+X=")
        c.int(Int.min)
        c.int(0)
        c.withBytes { #expect($0.text == "AT+X=-9223372036854775808,0") }
    }
}
