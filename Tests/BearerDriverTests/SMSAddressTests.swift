// SMSAddress.sameNumber: how the firmware recognises the gateway. TS 23.040 §9.1.2.5: the `+` is the type of
// number (international, TOA 0x91), not a digit; the digits themselves must match exactly.
import Testing
@testable import BearerDriver

@Suite struct SMSAddressTests {
    let gateway = try! address("+15550199")

    @Test(arguments: [
        ("+15550199", true),
        ("15550199", true),       // same digits, unknown type (TOA 0x81)
        ("+4915550199", false),   // ends in the gateway's digits: the old suffix match took it for the gateway
        ("5550199", false),       // a suffix of 7 digits: the old match needed only 6
        ("+15550198", false),
        ("+155501990", false),
    ])
    func matchesExactDigitsOnly(other: String, same: Bool) throws {
        #expect(gateway.sameNumber(try address(other)) == same)
        #expect(try address(other).sameNumber(gateway) == same)
    }

    /// National type of number (TOA 0xA1) as an SMS-DELIVER originator, digits 15550199.
    @Test func nationalTypeWithTheSameDigitsMatches() throws {
        let m = try decodeHex("00" + "04" + "08A151551099" + "0004" + "11101021436500" + "01AA")
        #expect(m.address.kind == .national)
        #expect(gateway.sameNumber(m.address))
    }

    @Test func alphanumericNeverMatches() throws {
        var a = try address("15550199")
        a.typeOfAddress = 0xD0
        #expect(!gateway.sameNumber(a))
        #expect(!SMSAddress().sameNumber(SMSAddress()))  // two empty addresses are no number
    }
}
