// Dialect tables and auto-detection. Identity strings as the vendors' manuals show ATI / AT+CGMM answers
// (SIMCom SIM7600 "SIMCOM_SIM7600E-H", SIM800 "SIMCOM_SIM800L"; Quectel "BG96", "EG25"; u-blox "SARA-R410M-02B").
import Testing
@testable import BearerDriver

@Suite struct DialectTests {
    static let identities: [(String, ModemDialect.Vendor)] = [
        ("SIMCOM_SIM7600E-H", .simcom),
        ("SIMCOM_SIM800L", .simcom),
        ("Manufacturer: SIMCOM INCORPORATED", .simcom),
        ("BG96", .quectel),
        ("EG25", .quectel),
        ("Quectel", .quectel),
        ("M66", .quectel),
        ("SARA-R410M-02B", .ublox),
        ("u-blox", .ublox),
        ("SARA-U201", .ublox),
        ("Generic 3GPP modem", .generic),
        ("", .generic),
    ]

    @Test(arguments: identities)
    func detectsVendorFromIdentity(_ id: String, _ vendor: ModemDialect.Vendor) {
        bytes(id).withUnsafeBytes { #expect(ModemDialect.detect($0).vendor == vendor) }
    }

    @Test func genericProfileHasNoSockets() {
        #expect(ModemDialect.generic.sockets == nil)
        #expect(ModemDialect.simcom.sockets?.style == .simcomCIP)
        #expect(ModemDialect.quectel.sockets?.style == .quectelQI)
        #expect(ModemDialect.ublox.sockets?.style == .ubloxUSO)
    }

    @Test func everyDialectKeepsTheTwoLineCMTRule() {
        for d in [ModemDialect.generic, .simcom, .quectel, .ublox] {
            var found = false
            for i in 0..<d.rules.count where d.rules.rule(at: i).prefix.bytes.equals("+CMT:") {
                found = d.rules.rule(at: i).body == .nextLine
            }
            #expect(found, "dialect \(d.name)")
        }
    }

    @Test func promptsDifferAsTheManualsSay() {
        #expect(ModemDialect.ublox.sockets?.sendPrompt == UInt8(ascii: "@"))
        #expect(ModemDialect.ublox.sockets?.promptDelayMs == 50)
        #expect(ModemDialect.simcom.sockets?.sendPrompt == UInt8(ascii: ">"))
        #expect(ModemDialect.quectel.sockets?.sendPrompt == UInt8(ascii: ">"))
    }

    @Test func ruleTableRefusesRowsPastItsCapacity() {
        var r = ATLineRules()
        for _ in 0..<ATLineRules.capacity {
            let added = r.add(ATLineRule("+X:"))
            #expect(added)
        }
        let extra = r.add(ATLineRule("+Y:"))
        #expect(!extra)
        #expect(r.count == ATLineRules.capacity)
    }
}
